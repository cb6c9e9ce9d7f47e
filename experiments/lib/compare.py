"""The main job's library code: every registered optimizer on one problem, side by side, and the table.

Every optimizer starts from the same parameters and sees the same batches (``training.batch`` is a pure function
of (seed, step)); optimizers tagged ``slow`` in the registry (muon) are left out unless named. Every name is
checked before the first is trained. The table's train loss is the final full-batch loss (all training examples
at the final parameters), not a mean of batch losses.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments.lib.common import progress as progress_lib
from experiments.lib.common import names as names_lib
from experiments.lib.common import results, training, usage
import optim
from optim import registry

CLAIMS = ()  # a comparison, not a reproduction


def optimizer_names(config) -> list[str]:
  """The configured optimizers, or every registered one but those tagged with ``exclude_tags`` (muon: 'slow')."""
  if config.optimizers:
    names = [n.strip() for n in config.optimizers.split(',') if n.strip()]
    for name in names:  # every name before the first is trained
      if name not in registry.names():
        raise usage.unknown('optimizer', name, registry.names())
    return names
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
      'train_loss': training.full_loss(problem.model, params, ds.x_train, ds.y_train),
      'test_accuracy': training.accuracy(problem.model, params, ds.x_test, ds.y_test),
      'steps_per_second': rate,
      'state_bytes_per_param_byte': state_bytes / optim.tree_bytes(problem.params),
  }


def run(config, workdir: str) -> list[dict]:
  """Every configured optimizer; writes config.json, metrics.jsonl (a row per optimizer, with its curve),
  results.json and curves.png."""
  names = optimizer_names(config)  # a misspelt name or a missing data_dir fails before the workdir is written
  problem = training.make_problem(config.data_dir or None, config.model, config.seed)
  writer = results.Writer(workdir, config)
  progress = progress_lib.Progress(len(names), 'compare', every=1, unit='optimizer')
  rows = []
  for k, name in enumerate(names, 1):
    row = run_one(problem, name, config)
    progress(k, optimizer=f'{name:<20s}', train_loss=f'{row["train_loss"]:.4f}',
             test_acc=f'{row["test_accuracy"]:.3f}', steps_per_s=f'{row["steps_per_second"]:.0f}')
    writer.metrics([row])
    rows.append(row)
  writer.results({'rows': rows})
  writer.figure(plot(rows), 'curves.png')
  return rows


def table(rows: list[dict]) -> str:
  head = (f'{"optimizer":>20s} {"train loss":>10s} {"test acc":>8s} {"steps/s":>8s} {"state/param":>11s}')
  lines = [head, '-' * len(head)]
  for r in sorted(rows, key=_final_loss):
    lines.append(f'{r["optimizer"]:>20s} {r["train_loss"]:10.4f} {r["test_accuracy"]:8.3f} '
                 f'{r["steps_per_second"]:8.0f} {r["state_bytes_per_param_byte"]:11.2f}')
  lines.append('train loss: full-batch cross-entropy at the final parameters; test acc: test accuracy; '
               'state/param: optimizer-state bytes per parameter byte')
  return '\n'.join(lines)


def _final_loss(row: dict) -> float:
  """The sort key: the final full-batch train loss, a diverged run (NaN) last."""
  loss = row['train_loss']
  return loss if loss is not None and np.isfinite(loss) else np.inf


def styles(n: int) -> list[dict]:
  """``n`` distinguishable line styles: ten colours, then the same ten dashed, dotted, dash-dotted."""
  import matplotlib.pyplot as plt
  colours = plt.get_cmap('tab10').colors
  dashes = ['-', '--', ':', '-.']
  return [{'color': colours[i % 10], 'linestyle': dashes[(i // 10) % len(dashes)]} for i in range(n)]


def plot(rows: list[dict]):
  """Batch-loss curves (legend in the order of the final full-batch loss, the best thick and starred) beside the
  final full-batch losses as bars; optimizers by their papers' names (``common.names``)."""
  import matplotlib.pyplot as plt
  ranked = sorted(rows, key=_final_loss)
  fig, (ax, bars) = plt.subplots(1, 2, figsize=(13, 5.5), gridspec_kw={'width_ratios': [3, 2]})
  for i, (r, style) in enumerate(zip(ranked, styles(len(ranked)))):
    t, loss = zip(*r['curve'])
    best = i == 0
    label = names_lib.label(r['optimizer']) + (' (best)' if best else '')
    ax.plot(t, loss, label=label, linewidth=2.6 if best else 1.2, zorder=3 if best else 2, **style)
    if best:
      ax.plot(t[-1], loss[-1], marker='*', markersize=14, color=style['color'], markeredgecolor='black', zorder=4)
  ax.set(xlabel='step', ylabel='train loss on the batch (log scale)', yscale='log',
         title='Training curves (legend: best final full-batch loss first)')
  ax.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.01, 1.0), borderaxespad=0, title='optimizer',
            title_fontsize=8)
  names = [names_lib.label(r['optimizer']) for r in ranked]
  values = [_final_loss(r) for r in ranked]
  finite = [v for v in values if np.isfinite(v)]
  shown = [v if np.isfinite(v) else (max(finite) if finite else 1.0) for v in values]
  colours = [s['color'] for s in styles(len(ranked))]
  y = np.arange(len(ranked))
  bars.barh(y, shown, color=colours, edgecolor=['black' if i == 0 else 'none' for i in y], linewidth=1.5)
  for yi, v in zip(y, values):
    bars.annotate(f'{v:.3g}' if np.isfinite(v) else 'diverged', (shown[yi], yi), xytext=(3, 0),
                  textcoords='offset points', va='center', fontsize=7)
  bars.set_yticks(y, names, fontsize=7)
  bars.invert_yaxis()
  bars.set(xscale='log', xlabel='final train loss, full batch (log scale)', title='Final full-batch train loss')
  fig.suptitle('digits MLP: every optimizer from the same initial parameters on the same batches')
  return fig
