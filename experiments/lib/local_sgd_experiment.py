"""DiLoCo and Streaming DiLoCo against synchronous data parallel on a character transformer: loss vs bytes.

n workers train :class:`experiments.lib.models.CharTransformer` on tiny Shakespeare (``--config.data_dir``, a
folder with ``input.txt`` or the file itself; a small embedded text by default), each on its own random windows.
Every method gets the same compute (``steps`` inner steps per worker, the same inner AdamW and schedule):

- ``ddp``: the mean gradient every step (dense float32 all-reduce), then AdamW;
- ``diloco_h{H}``: :func:`decentral.local_sgd.diloco`, outer Nesterov (0.7, 0.9), float32 pseudo-gradients;
- ``streaming_p{P}_t{tau}``: :func:`decentral.local_sgd.streaming_diloco` with H = ``streaming_sync_every``,
  FP4 E3M0 outer gradients, alpha = ``mixing``;
- ``sparseloco_h{H}``, ``edit_h{H}``: SparseLoCo and EDiT, for reference.

Bytes are what each worker sends, exact for the encoding (``decentral.ledger``): per run the total per worker
and the peak in one step. The summary states the reductions against ``ddp`` next to the papers' headlines
(DiLoCo: communication / H; Streaming DiLoCo: peak bandwidth / (P x 8) with FP4).
"""

from __future__ import annotations

import json
import os
import re
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax import lax

import decentral
from decentral import axis
from decentral import edit as edit_lib
from decentral import ledger
from decentral import local_sgd as ls
from experiments.lib import data as data_lib
from experiments.lib import models
from experiments.lib import training


def default_config(preset: str = '') -> ml_collections.ConfigDict:
  """The sub-experiment's settings. Presets: '' (the full grid, ~20 CPU-minutes), 'medium' (the same grid on a
  smaller budget, ~5 CPU-minutes) and 'smoke' (< 1 CPU-minute)."""
  c = ml_collections.ConfigDict()
  c.data_dir = ''                 # folder with input.txt (tiny Shakespeare) or a text file; '' = embedded text
  c.num_workers = 4
  c.steps = 400                   # inner steps per worker (equal compute for every method)
  c.batch_size = 16               # sequences per worker and step
  c.block = 64
  c.d_model = 64
  c.layers = 2
  c.heads = 4
  c.learning_rate = 3e-3          # inner AdamW peak, linear warm-up then cosine to 10%
  c.warmup = 20
  c.weight_decay = 0.01
  c.outer_learning_rate = 0.7
  c.outer_momentum = 0.9
  c.methods = ('ddp,diloco_h10,diloco_h50,'
               'streaming_p1_t0,streaming_p1_t1,streaming_p1_t2,streaming_p2_t0,streaming_p2_t1,streaming_p2_t2,'
               'streaming_p4_t0,streaming_p4_t1,streaming_p4_t2,sparseloco_h50,edit_h50')
  # Every H (10, 50, 40) divides steps, so the last evaluation is of a freshly synced global model.
  c.streaming_sync_every = 40     # H of Streaming DiLoCo: a multiple of every P; steps a multiple of every H
  c.streaming_quantize = 'e3m0'
  c.mixing = 0.5                  # alpha
  c.fragments = 'balanced'        # 'strided' (leaf j -> j mod P) or 'balanced' (equal sizes)
  c.eval_every = 10               # the global model changes only at syncs: curves are staircases
  c.eval_batches = 8
  c.seed = 0
  if preset == 'medium':
    c.steps, c.batch_size, c.block, c.d_model = 200, 8, 48, 48
    c.methods = ('ddp,diloco_h10,diloco_h50,'
                 'streaming_p1_t0,streaming_p1_t1,streaming_p1_t2,streaming_p2_t0,streaming_p2_t1,'
                 'streaming_p2_t2,streaming_p4_t0,streaming_p4_t1,streaming_p4_t2')
  elif preset == 'smoke':
    c.steps, c.batch_size, c.block, c.d_model, c.layers, c.warmup = 16, 4, 32, 32, 1, 4
    c.methods = 'ddp,diloco_h4,streaming_p2_t1'
    c.streaming_sync_every = 8
    c.eval_every = 8
    c.eval_batches = 2
  elif preset:
    raise ValueError(f'unknown preset {preset!r}; known: medium, smoke')
  return c


def corpus(data_dir: str) -> data_lib.CharCorpus:
  if not data_dir:
    return data_lib.load_chars(None)
  path = os.path.join(data_dir, 'input.txt') if os.path.isdir(data_dir) else data_dir
  if not os.path.exists(path):
    raise FileNotFoundError(f'no text at {path!r}: pass a folder with input.txt or a text file as data_dir')
  return data_lib.load_chars(path)


def _inner(config):
  if not 0 <= config.warmup < config.steps:
    raise ValueError(f'warmup must be in [0, steps={config.steps}), got {config.warmup}')
  schedule = optax.warmup_cosine_decay_schedule(0.0, config.learning_rate, config.warmup, config.steps,
                                                config.learning_rate * 0.1)
  return optax.adamw(schedule, weight_decay=config.weight_decay)


def build(name: str, config, params):
  """(transform, static bytes per worker per step or None if the state's CommStats reports them)."""
  inner = _inner(config)
  outer = ls.default_outer(config.outer_learning_rate, config.outer_momentum)
  if name == 'ddp':
    return optax.chain(decentral.aggregate(decentral.mean, axis_name='workers'), inner), ledger.dense_nbytes(params)
  m = re.fullmatch(r'(diloco|sparseloco|edit)_h(\d+)', name)
  if m:
    h = int(m.group(2))
    if m.group(1) == 'diloco':
      return ls.diloco(inner, outer, sync_every=h), None
    if m.group(1) == 'sparseloco':
      return ls.sparseloco(inner, sync_every=h), None
    return edit_lib.edit(inner, sync_every=h, warmup=10), None
  m = re.fullmatch(r'streaming_p(\d+)_t(\d+)', name)
  if m:
    frag = ls.balanced_fragments if config.fragments == 'balanced' else None
    return ls.streaming_diloco(inner, outer, sync_every=config.streaming_sync_every, num_fragments=int(m.group(1)),
                               overlap=int(m.group(2)), mixing=config.mixing, quantize=config.streaming_quantize,
                               fragments=frag), None
  raise ValueError(f'unknown method {name!r}: ddp, diloco_h<H>, sparseloco_h<H>, edit_h<H>, streaming_p<P>_t<tau>')


def _batches(ids, config, start, length):
  """(n, length, batch, block) inputs and targets: worker w's batch at step t is char_batch(seed=(seed, w))."""
  xs, ys = [], []
  for w in range(config.num_workers):
    pairs = [data_lib.char_batch(ids, config.batch_size, config.block, t, seed=config.seed * 1000 + w + 1)
             for t in range(start, start + length)]
    xs.append(np.stack([p[0] for p in pairs]))
    ys.append(np.stack([p[1] for p in pairs]))
  return np.stack(xs), np.stack(ys)


def run_method(name: str, config, data: data_lib.CharCorpus, model, params0, eval_set) -> dict:
  """Trains one method; returns its curve (train and validation loss, bytes) and summary figures."""
  tx, dense_bytes = build(name, config, params0)
  n = config.num_workers

  def loss_fn(p, x, y):
    return models.cross_entropy(model.apply(p, x), y)

  def chunk(p, s, xb, yb):
    def body(carry, batch):
      p, s = carry
      loss, g = jax.value_and_grad(loss_fn)(p, *batch)
      u, s = tx.update(g, s, p)
      sent = jnp.asarray(dense_bytes if dense_bytes is not None else ledger.sent_bytes(s), jnp.int32)
      return (optax.apply_updates(p, u), s), (loss, sent)
    (p, s), (losses, sent) = lax.scan(body, (p, s), (xb, yb))
    return p, s, losses, sent

  run_chunk = axis.run(chunk, n)
  stacked = jax.tree.map(lambda v: jnp.broadcast_to(v, (n,) + v.shape), params0)
  state = axis.run(tx.init, n)(stacked)
  evaluate = jax.jit(lambda p: jnp.mean(jax.vmap(lambda x, y: loss_fn(p, x, y))(*eval_set)))
  led = ledger.Ledger(n)
  curve, peak, t0, step = [], 0, time.perf_counter(), 0
  while step < config.steps:
    length = min(config.eval_every, config.steps - step)
    xb, yb = _batches(data.train, config, step, length)
    stacked, state, losses, sent = run_chunk(stacked, state, xb, yb)
    sent = np.asarray(sent)
    for t in range(length):
      led.record(step + t, sent[:, t])
    peak = max(peak, int(sent.max()))
    step += length
    global_params = _global(stacked, state)
    curve.append({'method': name, 'step': step, 'train_loss': float(np.mean(np.asarray(losses)[:, -10:])),
                  'val_loss': float(evaluate(global_params)), 'bytes_per_worker': led.mean_per_worker})
  return {'method': name, 'curve': curve, 'final_val_loss': curve[-1]['val_loss'],
          'final_train_loss': curve[-1]['train_loss'], 'bytes_per_worker': led.mean_per_worker,
          'peak_bytes_per_step': peak, 'seconds': time.perf_counter() - t0}


def _global(stacked, state):
  """The global model: the anchor of a local-SGD method (worker 0's copy), else worker 0's parameters."""
  anchor = getattr(state, 'anchor', None)
  tree = anchor if anchor is not None else stacked
  return jax.tree.map(lambda v: v[0], tree)


PAPER = {
    'diloco': 'DiLoCo (2311.08105): 8 workers, H=500 match synchronous training with 500x less communication',
    'streaming': 'Streaming DiLoCo (2501.18512): similar loss with ~100x lower peak bandwidth (fragments x FP4)',
}


def summarise(results: list[dict], config) -> list[dict]:
  """Adds the reductions against ddp (total and peak) and the figure each paper predicts."""
  ref = next((r for r in results if r['method'] == 'ddp'), None)
  rows = []
  for r in results:
    row = {k: v for k, v in r.items() if k != 'curve'}
    if ref is not None:
      row['bytes_reduction'] = ref['bytes_per_worker'] / max(r['bytes_per_worker'], 1)
      row['peak_reduction'] = ref['peak_bytes_per_step'] / max(r['peak_bytes_per_step'], 1)
      row['loss_gap_vs_ddp'] = r['final_val_loss'] - ref['final_val_loss']
    m = re.fullmatch(r'diloco_h(\d+)', r['method'])
    if m:
      row['paper_bytes_reduction'] = float(m.group(1))   # one dense sync per H steps
    m = re.fullmatch(r'streaming_p(\d+)_t\d+', r['method'])
    if m:  # per H steps one model's worth of outer gradients, in fragments of 1/P, at `bits` per entry
      bits = {'e3m0': 4, 'fp4_e3m0': 4, 'int8': 8}.get(str(config.streaming_quantize), 32)
      row['paper_bytes_reduction'] = config.streaming_sync_every * 32.0 / bits
      row['paper_peak_reduction'] = int(m.group(1)) * 32.0 / bits
    rows.append(row)
  return rows


def table(rows: list[dict]) -> str:
  head = (f'{"method":<18}{"val loss":>9}{"gap":>8}{"MB/worker":>11}{"reduction":>11}{"paper":>8}'
          f'{"peak B/step":>13}{"peak red.":>10}{"paper":>8}')
  lines = [head, '-' * len(head)]
  for r in rows:
    lines.append(f'{r["method"]:<18}{r["final_val_loss"]:>9.4f}{r.get("loss_gap_vs_ddp", float("nan")):>+8.3f}'
                 f'{r["bytes_per_worker"] / 1e6:>11.3f}{r.get("bytes_reduction", float("nan")):>10.1f}x'
                 f'{_fmt(r.get("paper_bytes_reduction")):>8}{r["peak_bytes_per_step"]:>13,d}'
                 f'{r.get("peak_reduction", float("nan")):>9.1f}x{_fmt(r.get("paper_peak_reduction")):>8}')
  return '\n'.join(lines)


def _fmt(v):
  return '' if v is None else f'{v:g}x'


def plot(results: list[dict], path: str) -> None:
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
  colors = plt.get_cmap('tab20').colors
  for i, r in enumerate(results):
    c, color = r['curve'], colors[i % len(colors)]
    style = '-' if r['method'].startswith(('ddp', 'diloco')) else '--'
    axes[0].plot([p['step'] for p in c], [p['val_loss'] for p in c], style, color=color, label=r['method'])
    sent = [p for p in c if p['bytes_per_worker'] > 0]  # log axis: from the first message on
    axes[1].plot([p['bytes_per_worker'] for p in sent], [p['val_loss'] for p in sent], style, marker='.',
                 color=color, label=r['method'])
  axes[0].set(xlabel='inner steps per worker', ylabel='validation loss (global model)')
  axes[1].set(xlabel='bytes sent per worker', ylabel='validation loss (global model)', xscale='log')
  axes[1].legend(fontsize=7, ncol=2)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def run(config, workdir: str) -> list[dict]:
  """Runs every method of ``config.methods``; writes metrics.jsonl, summary.json, table.txt and loss_vs_bytes.png."""
  os.makedirs(workdir, exist_ok=True)
  training.write_config(workdir, config)
  data = corpus(config.data_dir)
  model = models.CharTransformer(vocab_size=len(data.vocab), d_model=config.d_model, layers=config.layers,
                                 heads=config.heads, block=config.block)
  params0 = model.init(jax.random.key(config.seed), jnp.zeros((1, config.block), jnp.int32))
  ex, ey = zip(*[data_lib.char_batch(data.val, config.batch_size, config.block, t, seed=10_000 + config.seed)
                 for t in range(config.eval_batches)])
  eval_set = (jnp.asarray(np.stack(ex)), jnp.asarray(np.stack(ey)))
  metrics = os.path.join(workdir, 'metrics.jsonl')
  open(metrics, 'w').close()
  results = []
  for name in [m.strip() for m in config.methods.split(',') if m.strip()]:
    r = run_method(name, config, data, model, params0, eval_set)
    training.append_jsonl(metrics, r['curve'])
    print(f'{name:<18} val loss {r["final_val_loss"]:.4f}  {r["bytes_per_worker"] / 1e6:.3f} MB/worker  '
          f'peak {r["peak_bytes_per_step"]:,d} B/step  ({r["seconds"]:.0f}s)', flush=True)
    results.append(r)
  rows = summarise(results, config)
  with open(os.path.join(workdir, 'summary.json'), 'w') as f:
    sizes = [int(np.size(x)) for x in jax.tree.leaves(params0)]
    json.dump({'rows': rows, 'paper': PAPER, 'num_params': sum(sizes), 'leaf_sizes': sizes}, f, indent=1)
  with open(os.path.join(workdir, 'table.txt'), 'w') as f:
    f.write(table(rows) + '\n')
  plot(results, os.path.join(workdir, 'loss_vs_bytes.png'))
  return rows
