"""The geometric median by the smoothed Weiszfeld algorithm (RFA, Pillutla et al. 2019, arXiv 1912.13445).

A rule with the signature of :mod:`decentral.robust.aggregation`; non-finite rows get weight 0.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from decentral import checks
from decentral.robust.order_statistics import median
from decentral.stacked import (HIGHEST, check_f, finite_rows, num_workers, row_sums, rows, unrows, zero_nonfinite)

PyTree = Any


def geometric_median(stacked: PyTree, *, f: int = 0, key: jax.Array | None = None, nu: float = 0.1,
                     iters: int = 3, init: str = 'zero') -> PyTree:
  r"""Geometric median by the smoothed Weiszfeld algorithm with a fixed number of iterations (RFA, Pillutla et al.
  2019, arXiv 1912.13445; ByzFL's ``GeometricMedian(nu, T)``).

  .. math:: z_{t+1} = \frac{\sum_i x_i / \beta_i}{\sum_i 1/\beta_i}, \quad \beta_i = \max(\|x_i - z_t\|, \nu),
     \qquad z_0 = 0

  ``init='zero'`` (default) is ByzFL's start (fixture ``[[1,2,3],[4,5,6],[7,8,9]]`` -> ``[3.7879, 4.7879,
  5.7879]`` with nu=0.1, T=3); ``init='median'`` starts at the coordinate-wise median, which makes the rule
  translation-equivariant. Non-finite rows get weight 0 (ByzFL drops rows containing inf; we also drop NaN rows).
  No ties (a weighted average).

  Args:
    stacked: pytree of updates with a leading worker axis of size n.
    f: unused by the rule (robust for any f < n/2); checked.
    key: unused.
    nu: smoothing parameter, > 0.
    iters: number of Weiszfeld iterations, >= 0.
    init: ``'zero'`` or ``'median'``.

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
  finite = finite_rows(rs)
  safe = zero_nonfinite(rs, finite)
  if init == 'zero':
    z = [jnp.zeros_like(r[0]) for r in safe]
  else:
    z = jax.tree.leaves(jax.tree.map(lambda v: v.reshape(-1), median(stacked, f=f)))

  def step(_, z):
    dist = jnp.sqrt(sum(row_sums((r - zz) ** 2) for r, zz in zip(safe, z)))
    w = jnp.where(finite, 1.0 / jnp.maximum(dist, nu), 0.0)
    return [jnp.matmul(w, r, precision=HIGHEST) / jnp.sum(w) for r in safe]

  z = lax.fori_loop(0, iters, step, z)
  return unrows(z, stacked)
