"""One-shot pruning of the digits MLP: OBS with M-FAC's static inverse Fisher against magnitude pruning
(Frantar, Kurtic & Alistarh, arXiv 2107.03356; library code of experiments/pruning.py).

The MLP is trained once; then, for each target sparsity, its weight matrices (biases stay dense, as the authors
prune only the listed parameters) are pruned from the dense model in ``recomputations`` steps of geometrically
growing sparsity (the authors' ``nrecomps``), globally over all layers, either by magnitude or by OBS with the
empirical Fisher of ``num_grads`` mini-batch gradients recomputed at the current weights before every step.
No fine-tuning (one-shot). ``run`` writes ``config.json``, ``metrics.jsonl`` (one row per sparsity),
``results.json`` and ``pruning.png``.
"""

from __future__ import annotations

import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import numpy as np
import optax

from experiments.lib.common import claims, data, models
from experiments.lib.common import results as results_lib
from experiments.lib.common import training
from optim import pruning


def _train(cfg, ds, net):
  params = net.init(jax.random.key(cfg.seed), ds.x_train[:1])
  tx = optax.adam(cfg.learning_rate)
  state = tx.init(params)

  @jax.jit
  def step(params, state, x, y):
    grads = jax.grad(lambda p: models.cross_entropy(net.apply(p, x), y))(params)
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  for t in range(cfg.train_steps):
    x, y = training.batch(ds, cfg.batch_size, t, cfg.seed)
    params, state = step(params, state, x, y)
  return params


def _kernels(params):
  """The prunable part (every ``kernel``) as a flat vector, and the map back into ``params``."""
  kernels = {k: v['kernel'] for k, v in params['params'].items()}
  flat, unravel = ravel_pytree(kernels)

  def put(p, w):
    new = unravel(w)
    return {'params': {k: {**v, 'kernel': new[k]} for k, v in p['params'].items()}}

  return flat, put


def _evaluate(net, params, ds):
  logits = net.apply(params, ds.x_test)
  return {'accuracy': float(jnp.mean(jnp.argmax(logits, -1) == ds.y_test)),
          'loss': float(models.cross_entropy(logits, ds.y_test))}


def _prune(cfg, ds, net, dense, sparsity, method):
  w, put = _kernels(dense)
  d = w.shape[0]
  mask = jnp.ones(d, bool)
  n = len(ds.x_train)

  def batch_grad(wf, x, y):
    return jax.grad(lambda v: models.cross_entropy(net.apply(put(dense, v), x), y))(wf)

  grads_fn = jax.jit(jax.vmap(batch_grad, in_axes=(None, 0, 0)))
  pruned = 0
  for j in range(1, cfg.recomputations + 1):
    target = int(d * (1.0 - (1.0 - sparsity) ** (j / cfg.recomputations)))
    k = target - pruned
    if method == 'magnitude':
      w, mask = pruning.magnitude_prune(w, mask, k)
    else:
      idx = np.stack([data.batch_indices(n, cfg.fisher_batch, cfg.num_grads * j + i, cfg.seed + 1)
                      for i in range(cfg.num_grads)])
      grads = grads_fn(w, jnp.asarray(ds.x_train[idx]), jnp.asarray(ds.y_train[idx]))
      w, mask = pruning.obs_prune(w, grads, mask, k, cfg.damping, cfg.block_size)
    pruned = target
  return put(dense, w), 1.0 - float(jnp.mean(mask))


def run(cfg, workdir: str) -> list[dict]:
  writer = results_lib.Writer(workdir, cfg)
  ds = data.load_digits(seed=cfg.seed)
  net = models.MLP(hidden=tuple(cfg.hidden))
  dense = _train(cfg, ds, net)
  rows = [{'sparsity': 0.0, 'method': 'dense', **_evaluate(net, dense, ds)}]
  for s in cfg.sparsities:
    for method in ('magnitude', 'mfac_obs'):
      params, achieved = _prune(cfg, ds, net, dense, s, method)
      rows.append({'sparsity': s, 'achieved_sparsity': achieved, 'method': method, **_evaluate(net, params, ds)})
  writer.metrics(rows)
  writer.results({'rows': rows})
  writer.figure(_plot(rows), 'pruning.png')
  return rows


def _plot(rows):
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(5, 3.5))
  for method in ('magnitude', 'mfac_obs'):
    pts = [(r['sparsity'], r['accuracy']) for r in rows if r['method'] == method]
    ax.plot(*zip(*pts), marker='o', label=method)
  ax.axhline(rows[0]['accuracy'], color='gray', ls=':', label='dense')
  ax.set_xlabel('sparsity of the weight matrices')
  ax.set_ylabel('test accuracy (one-shot, no fine-tuning)')
  ax.legend()
  return fig


def table(rows) -> str:
  lines = [f"{'sparsity':>8}  {'magnitude':>9}  {'M-FAC OBS':>9}"]
  dense = rows[0]['accuracy']
  lines.append(f"{0.0:8.2f}  {dense:9.3f}  {dense:9.3f}")
  for s in sorted({r['sparsity'] for r in rows[1:]}):
    acc = {r['method']: r['accuracy'] for r in rows if r['sparsity'] == s}
    lines.append(f"{s:8.2f}  {acc['magnitude']:9.3f}  {acc['mfac_obs']:9.3f}")
  return '\n'.join(lines)


def _measure(rows):
  out = {'dense_accuracy': rows[0]['accuracy']}
  for r in rows[1:]:
    out[f"{r['method']}_{r['sparsity']:.2f}"] = r['accuracy']
  return out


def _assess(m) -> claims.Assessment:
  levels = sorted({k.split('_')[-1] for k in m if k.startswith('magnitude_')})
  gaps = {s: m[f'mfac_obs_{s}'] - m[f'magnitude_{s}'] for s in levels}
  ours = ', '.join(f"{s}: {m[f'mfac_obs_{s}']:.3f} vs {m[f'magnitude_{s}']:.3f}" for s in levels)
  ours = f"test accuracy M-FAC OBS vs magnitude at sparsity {ours} (dense {m['dense_accuracy']:.3f})"
  if all(g >= -0.005 for g in gaps.values()) and gaps[levels[-1]] > 0.02:
    return claims.Assessment(ours, 'agree', 'OBS with the M-FAC inverse Fisher is at least as accurate at every '
                             'sparsity and clearly better at the highest')
  if gaps[levels[-1]] > 0:
    return claims.Assessment(ours, 'partly', 'OBS is better at the highest sparsity but not at every level')
  return claims.Assessment(ours, 'disagree', 'magnitude pruning is as good or better at the highest sparsity')


CLAIMS = (
    claims.Claim(
        id='mfac_obs_pruning', experiment='pruning', title='M-FAC OBS pruning vs magnitude',
        paper='Frantar, Kurtic & Alistarh 2021', arxiv='2107.03356',
        claim='one-shot OBS pruning with the static M-FAC inverse empirical Fisher keeps more accuracy than '
              'magnitude pruning at equal sparsity',
        paper_number='M-FAC OBS above magnitude pruning at every sparsity of its one-shot ResNet-20/CIFAR-10 and '
                     'ResNet-50/ImageNet pruning curves (qualitative; digits MLP here)',
        measure=_measure, assess=_assess),
)
