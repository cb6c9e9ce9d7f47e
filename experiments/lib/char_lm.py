"""A small character-level transformer trained with registered optimizers side by side (library code of
experiments/char_lm.py; a notebook can call ``run`` directly).

Every optimizer starts from the same initial parameters and sees the same batches (``data.char_batch`` is a
pure function of (seed, step)); train and validation losses are measured on fixed windows drawn once, so the
numbers are comparable across optimizers.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments.lib.common import claims
from experiments.lib.common import data as data_lib
from experiments.lib.common import models, results, training
from experiments.lib.common import names as names_lib
from experiments.lib.common import progress as progress_lib
import optim
from optim import registry


def _swan_vs_adamw(rows: list[dict]) -> dict:
  by_name = {r['optimizer']: r for r in rows}
  swan, adamw = by_name['swan'], by_name['adamw']
  target = adamw['val_loss']
  reached = [step for step, ev in swan['eval_curve'] if ev['val'] <= target]
  return {'swan_val_loss': swan['val_loss'], 'adamw_val_loss': target, 'steps': adamw['eval_curve'][-1][0],
          'swan_steps_to_adamw_final': reached[0] if reached else None,
          'swan_state_bytes_per_param_byte': swan['state_bytes_per_param_byte'],
          'adamw_state_bytes_per_param_byte': adamw['state_bytes_per_param_byte']}


def _assess_swan(m) -> claims.Assessment:
  speedup = m['steps'] / m['swan_steps_to_adamw_final'] if m['swan_steps_to_adamw_final'] else None
  ours = (f"validation loss after {m['steps']} steps: SWAN {m['swan_val_loss']:.3f}, AdamW {m['adamw_val_loss']:.3f}"
          + (f"; SWAN reaches AdamW's final loss {speedup:.2g}x sooner" if speedup else '')
          + f"; state {m['swan_state_bytes_per_param_byte']:.2f} vs {m['adamw_state_bytes_per_param_byte']:.2f} bytes "
          'per parameter byte')
  stateless = m['swan_state_bytes_per_param_byte'] == 0
  if stateless and speedup and speedup >= 1.8:
    return claims.Assessment(ours, 'agree', 'stateless, and as fast as the paper\'s 2x in steps to AdamW\'s loss')
  if stateless and m['swan_val_loss'] <= m['adamw_val_loss'] + 0.05:
    ahead = 'below' if m['swan_val_loss'] < m['adamw_val_loss'] else 'level with'
    return claims.Assessment(ours, 'partly', f'stateless and {ahead} AdamW at equal steps, but short of the '
                             'paper\'s 2x in steps (evaluated every 50 steps, on a small character model, not LLaMA)')
  return claims.Assessment(ours, 'disagree', 'SWAN ends more than 0.05 above AdamW at equal steps')


CLAIMS = (
    claims.Claim(
        id='char_lm_swan', experiment='char_lm', title='SWAN against Adam (char LM)',
        paper='Ma et al. 2025 (SWAN)', arxiv='2412.13148',
        claim='SWAN, SGD with gradient normalisation and whitening, keeps no optimizer state and matches or beats Adam '
              'in language-model pre-training',
        paper_number='0 state bytes (about 50% less total memory than Adam); the same perplexity with half the tokens '
                     '(2x) for LLaMA 350M and 1.3B',
        measure=_swan_vs_adamw, assess=_assess_swan,
        overrides={'data_dir': '../shared/data/tinyshakespeare'}),
)


def optimizer_names(config) -> list[str]:
  """The configured optimizers, each checked against the registry (a KeyError names the known ones)."""
  names = [n.strip() for n in config.optimizers.split(',') if n.strip()]
  for n in names:
    registry.get(n)
  return names


def make_problem(config):
  """(corpus, model, initial params, fixed eval windows {'train': (x, y), 'val': (x, y)})."""
  corpus = data_lib.load_text(config.data_dir)
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
  state_bytes = optim.tree_bytes(opt_state)
  step = training.make_step(model, entry, tx)
  loss_fn = jax.jit(lambda p, x, y: models.cross_entropy(model.apply(p, x), y))
  progress = progress_lib.Progress(config.steps, f'{name:>12s}', every=config.log_every, unit='step')
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
      progress(done, loss=float(loss))
    if done % config.eval_every == 0 or done == config.steps:
      eval_curve.append((done, _evaluate(loss_fn, params, evals, config.batch_size)))
  jax.block_until_ready(params)
  rate = (config.steps - 1) / max(time.perf_counter() - t_first, 1e-9)
  final = eval_curve[-1][1]
  return {
      'optimizer': name, 'hparams': {**entry.defaults, **overrides}, 'train_curve': train_curve,
      'eval_curve': eval_curve, 'train_loss': final['train'], 'val_loss': final['val'],
      'finite': bool(np.isfinite(final['train']) and np.isfinite(final['val'])),
      'steps_per_second': rate, 'state_bytes_per_param_byte': state_bytes / optim.tree_bytes(init),
  }


def run(config, workdir: str) -> list[dict]:
  """Runs every configured optimizer; writes config.json, metrics.jsonl (a row per optimizer, with its curves),
  results.json and curves.png."""
  writer = results.Writer(workdir, config)
  names = optimizer_names(config)
  problem = make_problem(config)
  n_params = sum(p.size for p in jax.tree.leaves(problem[2]))
  print(f'{n_params / 1e3:.0f}k parameters, vocab {len(problem[0].vocab)}, '
        f'{len(problem[0].train):,} training characters, {config.steps} steps each', flush=True)
  rows = []
  for name in names:
    row = run_one(problem, name, config)
    writer.metrics([row])
    rows.append(row)
  writer.results({'rows': rows, 'num_params': n_params})
  writer.figure(plot(rows), 'curves.png')
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


def plot(rows: list[dict]):
  import matplotlib.pyplot as plt
  fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
  for r in rows:
    t, loss = zip(*r['train_curve'])
    left.plot(t, loss, label=names_lib.label(r['optimizer']))
    t, ev = zip(*r['eval_curve'])
    right.plot(t, [e['val'] for e in ev], marker='.', label=names_lib.label(r['optimizer']))
  left.set(xlabel='step', ylabel='train loss (batch)', title='char transformer: training batches')
  right.set(xlabel='step', ylabel='validation loss', title='held-out windows')
  right.legend(fontsize=7)
  return fig
