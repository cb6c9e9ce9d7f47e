"""The main job's library code: every registered optimizer on one problem, side by side, and the table.

Every optimizer starts from the same parameters and sees the same batches (``training.batch`` is a pure function
of (seed, step)); optimizers tagged ``slow`` in the registry (muon) are left out unless named.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments.lib.common import results, training
import optim
from optim import registry

CLAIMS = ()  # a comparison, not a reproduction


def optimizer_names(config) -> list[str]:
  """The configured optimizers, or every registered one but those tagged with ``exclude_tags`` (muon: 'slow')."""
  if config.optimizers:
    return [n.strip() for n in config.optimizers.split(',') if n.strip()]
  skip = tuple(t for t in config.exclude_tags.split(',') if t)
  return registry.names(without=skip)


def run_one(problem: training.Problem, name: str, config) -> dict:
  entry = registry.get(name)
  tx = entry.build()
  params = jax.tree.map(jnp.copy, problem.params)  # the step donates its inputs
  opt_state = tx.init(params)
  state_bytes = optim.tree_bytes(opt_state)
  step = training.make_step(problem.model, entry, tx)
  curve, t_first = [], None
  for t in range(config.steps):
    x, y = training.batch(problem.dataset, config.batch_size, t, config.seed)
    params, opt_state, loss = step(params, opt_state, x, y, training.oracle_key(config.seed, t))
    if t == 0:
      jax.block_until_ready(loss)
      t_first = time.perf_counter()  # steps/s is measured after compilation
    if t % config.log_every == 0 or t == config.steps - 1:
      curve.append((t, float(loss)))
  jax.block_until_ready(params)
  rate = (config.steps - 1) / max(time.perf_counter() - t_first, 1e-9)
  ds = problem.dataset
  return {
      'optimizer': name, 'hparams': dict(entry.defaults), 'curve': curve,
      'train_loss': float(np.mean([l for _, l in curve[-3:]])),
      'test_accuracy': training.accuracy(problem.model, params, ds.x_test, ds.y_test),
      'steps_per_second': rate,
      'state_bytes_per_param_byte': state_bytes / optim.tree_bytes(problem.params),
  }


def run(config, workdir: str) -> list[dict]:
  """Every configured optimizer; writes config.json, metrics.jsonl (a row per optimizer, with its curve),
  results.json and curves.png."""
  writer = results.Writer(workdir, config)
  problem = training.make_problem(config.data_dir or None, config.model, config.seed)
  rows = []
  for name in optimizer_names(config):
    row = run_one(problem, name, config)
    print(f'{name:>20s}  loss {row["train_loss"]:.4f}  acc {row["test_accuracy"]:.3f}  '
          f'{row["steps_per_second"]:.0f} steps/s', flush=True)
    writer.metrics([row])
    rows.append(row)
  writer.results({'rows': rows})
  writer.figure(plot(rows), 'curves.png')
  return rows


def table(rows: list[dict]) -> str:
  head = f'{"optimizer":>20s} {"train loss":>10s} {"test acc":>8s} {"steps/s":>8s} {"state/param":>11s}'
  lines = [head, '-' * len(head)]
  for r in sorted(rows, key=lambda r: r['train_loss']):
    lines.append(f'{r["optimizer"]:>20s} {r["train_loss"]:10.4f} {r["test_accuracy"]:8.3f} '
                 f'{r["steps_per_second"]:8.0f} {r["state_bytes_per_param_byte"]:11.2f}')
  return '\n'.join(lines)


def plot(rows: list[dict]):
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for r in rows:
    t, loss = zip(*r['curve'])
    ax.plot(t, loss, label=r['optimizer'])
  ax.set(xlabel='step', ylabel='train loss (batch)', yscale='log', title='digits MLP')
  ax.legend(fontsize=7, ncol=2)
  return fig
