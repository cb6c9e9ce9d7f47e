"""DP-SGD as an optax transform: per-example clipping, Gaussian noise added once to the clipped sum, keys in state.

:func:`dp_sgd_aggregate` turns per-example updates (a leading batch axis on every leaf) into one privatised update
with the parameters' shapes, so it chains in front of any optax optimizer:
``optax.chain(optim.dp_sgd_aggregate(1.0, 1.1, expected_batch_size=256), optax.adam(1e-3))``. :func:`dp_sgd` is
that chain with SGD, like ``optax.contrib.dpsgd``.

Abadi et al., "Deep Learning with Differential Privacy", arXiv 1607.00133.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from optim import checks
from optim.trees import gaussian_like
from optim.privacy import clipping

PyTree = Any


class DPAggregateState(NamedTuple):
  """The noise key and the step count: step t draws its noise from ``fold_in(key, t)``."""

  key: jax.Array
  count: jax.Array  # int32


def noise_std(l2_norm_clip: Any, noise_multiplier: Any) -> jax.Array:
  """``noise_multiplier * sensitivity(C)``, the std of the noise on the clipped sum (0 when there is no noise,
  also with an infinite clip)."""
  sens = jnp.asarray(clipping.sensitivity(l2_norm_clip), float)
  sigma = jnp.asarray(noise_multiplier, float)
  return jnp.where(sigma == 0, 0.0, sigma * sens)


def dp_sgd_aggregate(l2_norm_clip: Any, noise_multiplier: float, seed: int = 0, *,
                     expected_batch_size: int | None = None, reduction: str = 'mean',
                     axis_name: str | None = None) -> optax.GradientTransformationExtraArgs:
  """The private aggregate of per-example updates: clip each, sum, add Gaussian noise once, normalise.

  With per-example updates g_1..g_B (a leading batch axis on every leaf) and mask m_i (1 without a mask)::

      s = sum_i m_i clip(g_i, C) + N(0, (sigma C)^2 I),        clip(g, C) = g min(1, C / ||g||),
      out = s / B_expected          (reduction='mean')    or    s    (reduction='sum').

  The divisor is the EXPECTED batch size, as Opacus's ``DPOptimizer`` and jax_privacy divide: with Poisson
  sampling the realised size is data-dependent and dividing by it would leak it. Without ``expected_batch_size``
  the divisor is the number of rows B (times the axis size under ``axis_name``), right for fixed-size batches;
  a mask (Poisson batches) then requires ``expected_batch_size``. optax's ``differentially_private_aggregate``
  divides by the realised B instead (the same for fixed-size batches).

  Per-layer budgets: ``l2_norm_clip`` may be a tree with one budget C_l per leaf (the structure of one example);
  then each leaf is clipped to C_l and the noise std is ``sigma sqrt(sum_l C_l^2)``. Zero per-example updates
  pass unchanged; an example with an inf or NaN entry contributes exactly zero (the rule of
  :mod:`optim.privacy.clipping`).

  Across devices (``axis_name``, data parallel under ``shard_map``/``pmap``/``vmap``): every device clips its own
  rows, the clipped sums are all-reduced with ``lax.psum``, and then ONE noise sample is added: every device draws
  it from the same key (the state's key is replicated), so the total noise has exactly the calibrated variance
  (sigma C)^2 -- not n times it, not zero -- and the replicas stay equal.

  Args:
    l2_norm_clip: C > 0 (``inf``: no clipping), or a tree of per-leaf budgets.
    noise_multiplier: sigma >= 0, the noise std in units of the sensitivity.
    seed: the noise of step t is drawn from ``fold_in(key(seed), t)``.
    expected_batch_size: the divisor of ``reduction='mean'`` (q N for Poisson sampling at rate q).
    reduction: ``'mean'`` or ``'sum'``.
    axis_name: the data-parallel axis the batch is split over, or None.

  Returns:
    A ``GradientTransformationExtraArgs``: ``update(per_example_updates, state, params=None, *, mask=None)``
    returns updates with the shapes and dtypes of one example.

  Example:
    >>> import jax.numpy as jnp
    >>> tx = dp_sgd_aggregate(l2_norm_clip=1.0, noise_multiplier=0.0)
    >>> per_example = {'w': jnp.array([[3.0, 4.0], [0.0, 0.5]])}
    >>> out, _ = tx.update(per_example, tx.init({'w': jnp.zeros(2)}))
    >>> [round(v, 4) for v in out['w'].tolist()]  # (clip([3, 4]) + [0, 0.5]) / 2
    [0.3, 0.65]
  """
  clipping.check_clip(l2_norm_clip, 'dp_sgd_aggregate')
  checks.non_negative('dp_sgd_aggregate: noise_multiplier', noise_multiplier)
  checks.one_of('dp_sgd_aggregate: reduction', reduction, ('mean', 'sum'))
  if expected_batch_size is not None:
    checks.check('dp_sgd_aggregate: expected_batch_size', expected_batch_size, lambda v: v > 0, 'positive')
  budgets = jax.tree.leaves(l2_norm_clip)
  if (checks.is_concrete(noise_multiplier) and float(noise_multiplier) > 0
      and all(map(checks.is_concrete, budgets))  # numpy, not jnp: this may run while a caller's jit traces
      and not all(np.isfinite(np.asarray(c, float)).all() for c in budgets)):
    raise ValueError('dp_sgd_aggregate: noise_multiplier > 0 needs a finite l2_norm_clip (the noise std is '
                     'noise_multiplier * l2_norm_clip)')

  def init_fn(params):
    del params
    return DPAggregateState(jax.random.key(seed), jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None, *, mask=None, **extra):
    del extra
    rows = clipping.batch_size(updates)
    if params is not None:
      checks.same_structure(jax.tree.map(lambda x: x[0], updates), params, 'dp_sgd_aggregate per-example updates')
    if mask is not None and reduction == 'mean' and expected_batch_size is None:
      raise ValueError('dp_sgd_aggregate: a mask (Poisson batches) needs expected_batch_size for '
                       "reduction='mean' (dividing by the realised batch size would leak it)")
    total = clipping.clipped_sum(updates, l2_norm_clip, mask)
    if axis_name is not None:
      total = lax.psum(total, axis_name)
    std = noise_std(l2_norm_clip, noise_multiplier)
    noise = gaussian_like(jax.random.fold_in(state.key, state.count), total)
    if reduction == 'sum':
      divisor = 1.0
    elif expected_batch_size is not None:
      divisor = expected_batch_size
    else:
      divisor = rows * (1 if axis_name is None else lax.psum(1, axis_name))
    out = jax.tree.map(lambda s, z, x: ((s + std.astype(z.dtype) * z) / divisor).astype(x.dtype),
                       total, noise, jax.tree.map(lambda x: x[0], updates))
    return out, DPAggregateState(state.key, optax.safe_increment(state.count))

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def dp_sgd(learning_rate: optax.ScalarOrSchedule, l2_norm_clip: Any, noise_multiplier: float, seed: int = 0, *,
           expected_batch_size: int | None = None, momentum: float | None = None, nesterov: bool = False,
           axis_name: str | None = None) -> optax.GradientTransformationExtraArgs:
  """DP-SGD: :func:`dp_sgd_aggregate` then ``optax.sgd(learning_rate, momentum, nesterov)``.

  ``theta <- theta - eta (sum_i clip(g_i, C) + N(0, (sigma C)^2 I)) / B_expected`` (with momentum on that
  direction when ``momentum`` is set). Feed per-example gradients: ``update(per_example_grads, state, params,
  mask=...)``. Arguments as in :func:`dp_sgd_aggregate`; the privacy spent is :func:`optim.privacy.epsilon` of
  (noise_multiplier, sampling rate, steps, delta).

  Abadi et al., arXiv 1607.00133 (``optax.contrib.dpsgd`` is the same chain, dividing by the realised batch).

  Example:
    >>> import jax, jax.numpy as jnp, optax
    >>> from optim import per_example_grads
    >>> loss = lambda w, ex: 0.5 * (ex['x'] @ w - ex['y']) ** 2
    >>> batch = {'x': jnp.ones((4, 3)), 'y': jnp.arange(4.0)}
    >>> tx = dp_sgd(0.1, l2_norm_clip=1.0, noise_multiplier=1.1, expected_batch_size=4)
    >>> w = jnp.zeros(3)
    >>> updates, state = tx.update(per_example_grads(loss, w, batch), tx.init(w), w)
    >>> optax.apply_updates(w, updates).shape
    (3,)
  """
  checks.learning_rate(learning_rate, 'dp_sgd: learning_rate')
  return optax.chain(
      dp_sgd_aggregate(l2_norm_clip, noise_multiplier, seed, expected_batch_size=expected_batch_size,
                       axis_name=axis_name),
      optax.sgd(learning_rate, momentum=momentum, nesterov=nesterov))
