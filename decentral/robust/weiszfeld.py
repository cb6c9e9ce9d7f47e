"""The geometric median by the smoothed Weiszfeld algorithm (RFA, Pillutla et al. 2019, arXiv 1912.13445).

A rule with the signature of :mod:`decentral.robust.aggregation`; non-finite rows get weight 0. Every iterate after
the first is an affine combination of the rows, so the iterations run on n weights with distances from the Gram
matrix (:func:`decentral.robust.passes.gram_stats`, one pass over the stack), and the stack is read once more to
combine the rows with the last weights: no per-iteration pass over the stack, no difference vectors.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from decentral import checks
from decentral.robust.order_statistics import median
from decentral.robust.passes import gram_stats, row_sq_distances, weighted_sum
from decentral.stacked import HIGHEST, check_f, finite_rows, num_workers, rows, unrows, zero_nonfinite

DISTANCES = ('gram', 'direct')

PyTree = Any


def geometric_median(stacked: PyTree, *, f: int = 0, key: jax.Array | None = None, nu: float = 0.1,
                     iters: int = 3, init: str = 'zero', distances: str = 'gram') -> PyTree:
  r"""Geometric median by the smoothed Weiszfeld algorithm with a fixed number of iterations (RFA, Pillutla et al.
  2019, arXiv 1912.13445; ByzFL's ``GeometricMedian(nu, T)``).

  .. math:: z_{t+1} = \frac{\sum_i x_i / \beta_i}{\sum_i 1/\beta_i}, \quad \beta_i = \max(\|x_i - z_t\|, \nu),
     \qquad z_0 = 0

  ``init='zero'`` (default) is ByzFL's start (fixture ``[[1,2,3],[4,5,6],[7,8,9]]`` -> ``[3.7879, 4.7879,
  5.7879]`` with nu=0.1, T=3); ``init='median'`` starts at the coordinate-wise median, which makes the rule
  translation-equivariant. Non-finite rows get weight 0 (ByzFL drops rows containing inf; we also drop NaN rows).
  No ties (a weighted average).

  ``distances='gram'`` (default) computes |x_i - z_t| from the Gram matrix of the rows (one pass over the stack for
  all iterations, then one to combine): its absolute error is about sqrt(eps) times the spread of the rows, so a row
  closer to z_t than ~3e-4 of the spread (float32) may get weight 1/nu where the exact distance is above nu.
  ``distances='direct'`` (ByzFL's and the previous implementation's way) computes x_i - z_t at every iteration, two
  passes over the stack per iteration, exact to float32 rounding.

  Args:
    stacked: pytree of updates with a leading worker axis of size n.
    f: unused by the rule (robust for any f < n/2); checked.
    key: unused.
    nu: smoothing parameter, > 0.
    iters: number of Weiszfeld iterations, >= 0.
    init: ``'zero'`` or ``'median'``.
    distances: ``'gram'`` or ``'direct'``.

  Returns:
    One update.

  >>> import jax.numpy as jnp
  >>> x = jnp.array([[1., 2., 3.], [4., 5., 6.], [7., 8., 9.]])
  >>> jnp.round(geometric_median(x), 4)
  Array([3.7879, 4.7879, 5.7879], dtype=float32)
  """
  del key
  n = num_workers(stacked)
  check_f(f, n, 'geometric_median')
  checks.positive_finite(nu, 'geometric_median: nu')
  checks.non_negative_int(iters, 'geometric_median: iters')
  if init not in ('zero', 'median'):
    raise ValueError(f"geometric_median: init must be 'zero' or 'median', got {init!r}")
  rs = rows(stacked)
  if distances not in DISTANCES:
    raise ValueError(f'geometric_median: distances must be one of {DISTANCES}, got {distances!r}')
  if distances == 'direct':
    return unrows(_direct(stacked, rs, nu, iters, init), stacked)
  stats = gram_stats(rs)
  finite = stats.finite
  if init == 'zero':
    sq_dist = stats.sq_norms
  else:
    z0 = [v.reshape(-1) for v in jax.tree.leaves(median(stacked))]
    sq_dist = jnp.where(finite, sum(row_sq_distances(r, zz) for r, zz in zip(rs, z0)), jnp.inf)
  if iters == 0:
    return unrows([jnp.zeros_like(r[0]) for r in rs] if init == 'zero' else z0, stacked)

  def step(_, a):
    # |x_i - sum_j a_j x_j|^2 in Gram form (sum_j a_j = 1, so the translation of the Gram matrix cancels).
    ga = jnp.matmul(stats.gram, a, precision=HIGHEST)
    return _weights(jnp.diagonal(stats.gram) - 2 * ga + jnp.dot(a, ga, precision=HIGHEST), finite, nu)

  a = lax.fori_loop(1, iters, step, _weights(sq_dist, finite, nu))
  return unrows([weighted_sum(r, a) for r in rs], stacked)


def _weights(sq_dist, finite, nu):
  """The normalised Weiszfeld weights a_i, z_{t+1} = sum_i a_i x_i; 0 for the non-finite rows."""
  w = jnp.where(finite, 1.0 / jnp.maximum(jnp.sqrt(jnp.maximum(sq_dist, 0)), nu), 0.0)
  return w / jnp.sum(w)


def _direct(stacked, rs, nu, iters, init):
  """The iterations on the iterates themselves: two passes over the stack per iteration."""
  finite = finite_rows(rs)
  safe = zero_nonfinite(rs, finite)
  if init == 'zero':
    z = [jnp.zeros_like(r[0]) for r in safe]
  else:
    z = [v.reshape(-1) for v in jax.tree.leaves(median(stacked))]

  def step(_, z):
    a = _weights(sum(row_sq_distances(r, zz) for r, zz in zip(safe, z)), finite, nu)
    return [weighted_sum(r, a) for r in safe]

  return lax.fori_loop(0, iters, step, z)
