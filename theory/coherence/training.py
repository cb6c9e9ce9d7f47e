"""Mini-batch SGD on the MLP with a plain, winsorised or median-of-means gradient, logging coherence on the way."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from optim.primitives import per_example_grads
from theory.coherence.metric import sample_m_coherence
from theory.coherence.model import accuracy, example_loss, init_mlp, mean_loss
from theory.coherence.robust import median_of_means, winsorized_mean
from theory.numerics import float64

AGGREGATORS = ('mean', 'winsorized', 'median_of_means')


@functools.partial(jax.jit, static_argnames=('aggregator', 'c', 'groups', 'batch_size', 'num_steps'))
def _sgd_chunk(params, x, y, key, start, learning_rate, aggregator, c, groups, batch_size, num_steps):
  n = x.shape[0]

  def step(p, t):
    idx = jax.random.choice(jax.random.fold_in(key, t), n, (batch_size,), replace=False)
    if aggregator == 'mean':
      g = jax.grad(mean_loss)(p, x[idx], y[idx])
    elif aggregator == 'winsorized':
      g = winsorized_mean(per_example_grads(example_loss, p, (x[idx], y[idx])), c)
    else:
      # The group means of per-example gradients are the gradients of the group mean losses: no per-example pass.
      size = batch_size // groups
      xs, ys = x[idx[:groups * size]], y[idx[:groups * size]]
      group_grads = jax.vmap(jax.grad(mean_loss), in_axes=(None, 0, 0))(
          p, xs.reshape(groups, size, -1), ys.reshape(groups, size))
      g = median_of_means(group_grads, groups)  # each "example" is now one group: the median of the group means
    return jax.tree.map(lambda a, b: a - learning_rate * b, p, g), None

  return jax.lax.scan(step, params, start + jnp.arange(num_steps))[0]


# Module-level jits: compiled once per shape, not once per run.
_coherence = jax.jit(lambda params, xs, ys: sample_m_coherence(example_loss, params, (xs, ys)))
_loss = jax.jit(mean_loss)
_accuracy = jax.jit(accuracy)


@float64
def train_with_coherence(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                         corrupted: np.ndarray | None = None, *, hidden: tuple[int, ...] = (128, 128),
                         steps: int = 2000, batch_size: int = 100, learning_rate: float = 0.1,
                         aggregator: str = 'mean', c: int = 4, groups: int = 3, eval_every: int = 100,
                         coherence_size: int = 256, seed: int = 0) -> dict[str, np.ndarray]:
  """SGD (a batch drawn without replacement each step) on the ReLU MLP, in float64, with checkpoints.

  The update is ``w <- w - lr * A(g_1..g_B)`` with ``A`` the mean (plain SGD), :func:`winsorized_mean` with
  ``c`` or :func:`median_of_means` with ``groups``. At every checkpoint it measures the m-coherence of the
  per-example gradients of a fixed training sample of ``coherence_size`` examples *with their training labels*
  (the same sample throughout, so the curve is not mixed with batch noise), the accuracy on the clean and on the
  corrupted training examples, and the test accuracy.

  Args:
    x, y: training inputs ``(n, d)`` and (possibly corrupted) integer labels.
    x_test, y_test: test set with true labels.
    corrupted: boolean mask of the corrupted training labels (None: none).
    hidden: hidden widths.
    steps: SGD steps (a multiple of ``eval_every``).
    batch_size: ``B``.
    learning_rate: step size.
    aggregator: one of :data:`AGGREGATORS`.
    c: winsorisation count (``aggregator='winsorized'``).
    groups: number of groups (``aggregator='median_of_means'``).
    eval_every: steps between checkpoints.
    coherence_size: ``m``, the size of the coherence sample.
    seed: seed of the initialisation, the batches and the coherence sample.

  Returns:
    ``{'steps', 'm_coherence', 'loss', 'train_clean_acc', 'train_corrupted_acc', 'test_acc'}`` arrays over the
    checkpoints (step 0 included); ``train_corrupted_acc`` is NaN without corrupted labels.
  """
  if aggregator not in AGGREGATORS:
    raise ValueError(f'train_with_coherence: aggregator must be one of {AGGREGATORS}, got {aggregator!r}')
  if steps % eval_every:
    raise ValueError(f'train_with_coherence: steps={steps} must be a multiple of eval_every={eval_every}')
  n, k = x.shape[0], int(max(y.max(), y_test.max())) + 1
  corrupted = np.zeros(n, bool) if corrupted is None else np.asarray(corrupted, bool)
  x, y = jnp.asarray(x, jnp.float64), jnp.asarray(y, jnp.int32)
  xt, yt = jnp.asarray(x_test, jnp.float64), jnp.asarray(y_test, jnp.int32)
  params = init_mlp(seed, (x.shape[1], *hidden, k))
  sample = np.random.RandomState(seed + 1).permutation(n)[:min(coherence_size, n)]
  key = jax.random.key(seed + 2)
  clean_idx, bad_idx = np.flatnonzero(~corrupted), np.flatnonzero(corrupted)
  rows = []
  for t in range(0, steps + 1, eval_every):
    if t:
      params = _sgd_chunk(params, x, y, key, t - eval_every, learning_rate, aggregator, c, groups, batch_size,
                          eval_every)
    rows.append((t, float(_coherence(params, x[sample], y[sample])), float(_loss(params, x, y)),
                 float(_accuracy(params, x[clean_idx], y[clean_idx])),
                 float(_accuracy(params, x[bad_idx], y[bad_idx])) if len(bad_idx) else float('nan'),
                 float(_accuracy(params, xt, yt))))
  cols = np.asarray(rows).T
  names = ('steps', 'm_coherence', 'loss', 'train_clean_acc', 'train_corrupted_acc', 'test_acc')
  out = dict(zip(names, cols))
  out['steps'] = out['steps'].astype(int)
  out['coherence_size'] = len(sample)
  return out
