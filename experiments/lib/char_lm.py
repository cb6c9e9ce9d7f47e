"""A small character-level transformer trained with registered optimizers side by side (library code of
experiments/char_lm.py; a notebook can call ``run`` directly).

Every optimizer starts from the same initial parameters and sees the same batches (``data.char_batch`` is a
pure function of (seed, step)); train and validation losses are measured on fixed windows drawn once, so the
numbers are comparable across optimizers.
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.configs import char_lm as char_lm_config
from experiments.lib import data as data_lib
from experiments.lib import models, training
from optim import registry


def ensure_baselines() -> None:
  """Registers optax.contrib.muon as 'muon' (tag 'slow': the main job skips it) unless it is registered."""
  if 'muon' not in registry.names():
    registry.register('muon', optax.contrib.muon, learning_rate=0.02, tags=('baseline', 'matrix', 'slow'))


def optimizer_names(config) -> list[str]:
  """The optimizers to compare: the configured list, or the registered ones among the defaults."""
  ensure_baselines()
  if config.optimizers:
    names = [n.strip() for n in config.optimizers.split(',') if n.strip()]
    for n in names:
      registry.get(n)  # a KeyError naming the known optimizers
    return names
  known = set(registry.names())
  return [n for n in char_lm_config.DEFAULT_OPTIMIZERS if n in known]


def make_problem(config):
  """(corpus, model, initial params, fixed eval windows {'train': (x, y), 'val': (x, y)})."""
  path = os.path.join(config.data_dir, 'input.txt') if config.data_dir else None
  corpus = data_lib.load_chars(path)
  model = models.CharTransformer(vocab_size=len(corpus.vocab), d_model=config.d_model, layers=config.layers,
                                 heads=config.heads, block=config.block)
  x0, _ = data_lib.char_batch(corpus.train, 1, config.block, 0, config.seed)
  params = model.init(jax.random.key(config.seed), x0)
  evals = {}
  for split, ids in (('train', corpus.train), ('val', corpus.val)):
    # Seeds far from the training stream's (seed, step) pairs: held-out windows, fixed for the whole run.
    batches = [data_lib.char_batch(ids, config.batch_size, config.block, 10 ** 6 + i, config.seed)
               for i in range(config.eval_batches)]
    evals[split] = tuple(np.concatenate(parts) for parts in zip(*batches))
  return corpus, model, params, evals


def _steps(model, entry, tx):
  def loss_fn(params, x, y):
    return models.cross_entropy(model.apply(params, x), y)

  def step(params, opt_state, x, y, key):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    extra = entry.oracles(loss_fn=lambda p: loss_fn(p, x, y), params=params, key=key,
                          logits_fn=lambda p: model.apply(p, x))
    updates, opt_state = tx.update(grads, opt_state, params, **extra)
    return optax.apply_updates(params, updates), opt_state, loss

  return jax.jit(step, donate_argnums=(0, 1)), jax.jit(loss_fn)


def _evaluate(loss_fn, params, evals, batch_size) -> dict[str, float]:
  out = {}
  for split, (x, y) in evals.items():
    losses = [float(loss_fn(params, x[i:i + batch_size], y[i:i + batch_size])) for i in range(0, len(x), batch_size)]
    out[split] = float(np.mean(losses))
  return out


def run_one(problem, name: str, config) -> dict:
  """Trains one optimizer for ``config.steps`` steps; returns its curves and final losses."""
  corpus, model, init, evals = problem
  entry = registry.get(name)
  overrides = {}
  if name in config.learning_rates:
    overrides['learning_rate'] = config.learning_rates[name]
  tx = entry.build(**overrides)
  params = jax.tree.map(jnp.copy, init)  # the step donates its inputs
  opt_state = tx.init(params)
  state_bytes = training.tree_bytes(opt_state)
  step, loss_fn = _steps(model, entry, tx)
  progress = training.Progress(config.steps, config.log_every, prefix=f'{name:>12s} ')
  train_curve, eval_curve, t_first = [], [], None
  for t in range(config.steps):
    x, y = data_lib.char_batch(corpus.train, config.batch_size, config.block, t, config.seed)
    params, opt_state, loss = step(params, opt_state, x, y, training.oracle_key(config.seed, t))
    if t == 0:
      jax.block_until_ready(loss)
      t_first = time.perf_counter()  # steps/s after compilation
    done = t + 1
    if done % config.log_every == 0 or done == config.steps:
      train_curve.append((done, float(loss)))
      progress(done, float(loss))
    if done % config.eval_every == 0 or done == config.steps:
      eval_curve.append((done, _evaluate(loss_fn, params, evals, config.batch_size)))
  jax.block_until_ready(params)
  rate = (config.steps - 1) / max(time.perf_counter() - t_first, 1e-9)
  final = eval_curve[-1][1]
  return {
      'optimizer': name, 'hparams': {**entry.defaults, **overrides}, 'train_curve': train_curve,
      'eval_curve': eval_curve, 'train_loss': final['train'], 'val_loss': final['val'],
      'finite': bool(np.isfinite(final['train']) and np.isfinite(final['val'])),
      'steps_per_second': rate, 'state_bytes_per_param_byte': state_bytes / training.tree_bytes(init),
  }


def run(config, workdir: str) -> list[dict]:
  """Runs every configured optimizer; writes config.json, metrics.jsonl (a row per optimizer), curves.png."""
  os.makedirs(workdir, exist_ok=True)
  training.write_config(workdir, config)
  names = optimizer_names(config)
  problem = make_problem(config)
  n_params = sum(p.size for p in jax.tree.leaves(problem[2]))
  print(f'{n_params / 1e3:.0f}k parameters, vocab {len(problem[0].vocab)}, '
        f'{len(problem[0].train):,} training characters, {config.steps} steps each', flush=True)
  path = os.path.join(workdir, 'metrics.jsonl')
  open(path, 'w').close()
  rows = []
  for name in names:
    row = run_one(problem, name, config)
    training.append_jsonl(path, [row])
    rows.append(row)
  plot(rows, os.path.join(workdir, 'curves.png'))
  return rows


def table(rows: list[dict]) -> str:
  head = (f'{"optimizer":>16s} {"train loss":>10s} {"val loss":>9s} {"steps/s":>8s} {"state/param":>11s} '
          f'{"learning rate":>13s}')
  lines = [head, '-' * len(head)]
  for r in sorted(rows, key=lambda r: (not r['finite'], r['val_loss'])):
    lines.append(f'{r["optimizer"]:>16s} {r["train_loss"]:10.4f} {r["val_loss"]:9.4f} '
                 f'{r["steps_per_second"]:8.1f} {r["state_bytes_per_param_byte"]:11.2f} '
                 f'{r["hparams"]["learning_rate"]:13g}')
  return '\n'.join(lines)


def plot(rows: list[dict], path: str) -> None:
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
  for r in rows:
    t, loss = zip(*r['train_curve'])
    left.plot(t, loss, label=r['optimizer'])
    t, ev = zip(*r['eval_curve'])
    right.plot(t, [e['val'] for e in ev], marker='.', label=r['optimizer'])
  left.set(xlabel='step', ylabel='train loss (batch)', title='char transformer: training batches')
  right.set(xlabel='step', ylabel='validation loss', title='held-out windows')
  right.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
