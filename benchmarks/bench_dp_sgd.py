"""DP-SGD step time as a ratio to the non-private step on the same MLP, side by side in one run.

    python benchmarks/bench_dp_sgd.py
    python benchmarks/bench_dp_sgd.py --batch=512 --width=1024 --repeats=30

Steps timed (all jitted, one MLP of ``depth`` hidden ReLU layers on a batch of MNIST-sized inputs, SGD update):

- ``sgd``: the non-private step, ``grad`` of the mean loss;
- ``per_example``: per-example gradients by ``vmap(grad)`` (``optim.per_example_grads``) summed by a weighted
  contraction, no clipping: the price of materialising the [B, P] per-example tensor;
- ``dp_sgd``: ``optim.dp_sgd`` fed those per-example gradients (clip, sum, noise once);
- ``ghost_norm``: a prototype of what would close the gap, not a library transform: per-example norms of the
  dense layers from activations and output gradients, ||g_i||^2 = sum_l ||a_{l,i}||^2 ||delta_{l,i}||^2 +
  ||delta_{l,i}||^2 (Goodfellow 2015; Li et al. "ghost clipping", arXiv 2110.05679), then a second backward pass
  of the clip-weighted loss; two backward passes and no [B, P] tensor, so about 2x the non-private step. It
  computes the same clipped sum as ``dp_sgd`` (checked before timing).

Ratios to ``sgd`` are what to read (the fastest of ``repeats`` interleaved rounds). Not a test.
"""

from __future__ import annotations

import time

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np
import optax

import optim
from optim.optimizers.langevin import gaussian_like
from optim.privacy import clipping

_BATCH = flags.DEFINE_integer('batch', 128, 'Batch size B.')
_WIDTH = flags.DEFINE_integer('width', 256, 'Hidden width.')
_DEPTH = flags.DEFINE_integer('depth', 2, 'Hidden layers.')
_REPEATS = flags.DEFINE_integer('repeats', 20, 'Timed rounds (the fastest is reported).')

IN, OUT, CLIP, SIGMA = 784, 10, 1.0, 1.0


def init_mlp(width: int, depth: int) -> list:
  sizes = [IN] + [width] * depth + [OUT]
  keys = jax.random.split(jax.random.key(0), len(sizes))
  return [{'w': jax.random.normal(k, (m, n)) / np.sqrt(m), 'b': jnp.zeros(n)}
          for k, m, n in zip(keys, sizes[:-1], sizes[1:])]


def forward(params, x, taps=None):
  """Logits; ``taps`` (zeros shaped like the pre-activations) are added to them so that their gradient is delta."""
  acts = []
  for i, layer in enumerate(params):
    acts.append(x)
    z = x @ layer['w'] + layer['b']
    if taps is not None:
      z = z + taps[i]
    x = jax.nn.relu(z) if i < len(params) - 1 else z
  return x, acts


def example_losses(params, x, y, taps=None):
  logits, acts = forward(params, x, taps)
  return -jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1)[:, 0], acts


def one_loss(params, ex):
  return example_losses(params, ex['x'][None], ex['y'][None])[0][0]


def ghost_clipped_sum(params, x, y):
  """sum_i clip(g_i, C) for the MLP without per-example gradients: norms from (a, delta), then one weighted pass."""
  taps = [jnp.zeros((x.shape[0], layer['b'].shape[0])) for layer in params]

  def summed(t):
    losses, acts = example_losses(params, x, y, t)
    return jnp.sum(losses), acts

  deltas, acts = jax.grad(summed, has_aux=True)(taps)
  sq = sum(jnp.sum(a * a, 1) * jnp.sum(d * d, 1) + jnp.sum(d * d, 1) for a, d in zip(acts, deltas))
  factor = jax.lax.stop_gradient(jnp.minimum(1.0, CLIP / jnp.sqrt(jnp.maximum(sq, 1e-30))))
  return jax.grad(lambda p: jnp.sum(factor * example_losses(p, x, y)[0]))(params)


def steps(batch: int) -> dict:
  """name -> (step(params, state, x, y) -> (params, state), the transform whose ``init`` gives the state)."""
  tx = optax.sgd(0.1)
  dp = optim.dp_sgd(0.1, CLIP, SIGMA)

  def sgd(params, state, x, y):
    g = jax.grad(lambda p: jnp.mean(example_losses(p, x, y)[0]))(params)
    u, state = tx.update(g, state, params)
    return optax.apply_updates(params, u), state

  def per_example(params, state, x, y):
    # A weighted sum over the batch axis (weights all 1 here): XLA must materialise the B gradients, as it must
    # for clipping. (A plain mean(0) is rewritten by XLA into the batch gradient and would measure nothing.)
    per = optim.per_example_grads(one_loss, params, {'x': x, 'y': y})
    g = jax.tree.map(lambda v: v / batch, clipping.kept_sum(per, jnp.ones((batch,), bool)))
    u, state = tx.update(g, state, params)
    return optax.apply_updates(params, u), state

  def dp_sgd(params, state, x, y):
    u, state = dp.update(optim.per_example_grads(one_loss, params, {'x': x, 'y': y}), state, params)
    return optax.apply_updates(params, u), state

  def ghost(params, state, x, y):
    # The same noise, key schedule and normalisation as dp_sgd, on the ghost-norm clipped sum.
    key, count = state
    z = gaussian_like(jax.random.fold_in(key, count), params)
    total = ghost_clipped_sum(params, x, y)
    params = jax.tree.map(lambda p, s, n: p - 0.1 * (s + SIGMA * CLIP * n) / batch, params, total, z)
    return params, (key, count + 1)

  ghost_init = optax.GradientTransformation(lambda p: (jax.random.key(0), jnp.zeros([], jnp.int32)), None)
  return {'sgd': (sgd, tx), 'per_example': (per_example, tx), 'dp_sgd': (dp_sgd, dp), 'ghost_norm': (ghost, ghost_init)}


def main(argv):
  del argv
  batch = _BATCH.value
  params = init_mlp(_WIDTH.value, _DEPTH.value)
  x = jax.random.normal(jax.random.key(1), (batch, IN))
  y = jax.random.randint(jax.random.key(2), (batch,), 0, OUT)
  per = optim.per_example_grads(one_loss, params, {'x': x, 'y': y})
  want = clipping.clipped_sum(per, CLIP)
  got = jax.jit(ghost_clipped_sum)(params, x, y)
  err = max(float(jnp.max(jnp.abs(a - b)) / (jnp.max(jnp.abs(a)) + 1e-12)) for a, b in zip(
      jax.tree.leaves(want), jax.tree.leaves(got)))
  n_params = sum(p.size for p in jax.tree.leaves(params))
  print(f'MLP {IN}-{"-".join([str(_WIDTH.value)] * _DEPTH.value)}-{OUT}: {n_params / 1e6:.2f}M parameters, '
        f'batch {batch}; ghost-norm clipped sum vs per-example: max rel. error {err:.1e}')

  runs = {}
  for name, (fn, tx) in steps(batch).items():
    step = jax.jit(fn)
    carry = [params, tx.init(params)]

    def run(step=step, carry=carry):
      t0 = time.perf_counter()
      carry[:] = step(carry[0], carry[1], x, y)
      jax.block_until_ready(carry)
      return time.perf_counter() - t0

    run()  # compile
    runs[name] = run
  times = {name: [] for name in runs}
  for _ in range(_REPEATS.value):
    for name, run in runs.items():
      times[name].append(run())
  best = {name: min(v) for name, v in times.items()}
  print(f'{"step":<12} {"ms":>9} {"x sgd":>7}')
  for name, t in best.items():
    print(f'{name:<12} {1e3 * t:>9.2f} {t / best["sgd"]:>7.2f}')


if __name__ == '__main__':
  app.run(main)
