"""Distance-based selection: Krum, Multi-Krum (Blanchard et al. 2017) and nearest-neighbour averaging (MoNNA).

Rules with the signature of :mod:`decentral.robust.aggregation`. A worker's update is the concatenation of its
leaves; squared distances come from :func:`decentral.robust.passes.gram_stats` (Gram form, centred), a
non-finite row is at infinite distance from every other row, and ties go to the lowest worker index.

References: ByzFL (LPD-EPFL/byzfl) for the definitions and fixtures, Flower for its Krum convention.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from decentral import checks
from decentral.robust.passes import gram_stats, sq_distances
from decentral.stacked import (check_f, combine, compute_dtype, finite_rows, num_workers, row_sums, rows,
                               select_lowest, uniform_over, zero_nonfinite)

PyTree = Any

KRUM_CONVENTIONS = ('byzfl', 'paper', 'flower')


def krum_neighbours(n: int, f: int, convention: str, name: str = 'krum') -> int:
  """How many nearest other workers a Krum score sums over: n - f - 1 (``'byzfl'``), n - f - 2 (``'paper'``) or
  max(1, n - f - 2) (``'flower'``); ByzFL's and Flower's counts are kept within [1, n - 1] (0 for one worker)."""
  if convention not in KRUM_CONVENTIONS:
    raise ValueError(f'{name}: convention must be one of {KRUM_CONVENTIONS}, got {convention!r}')
  if convention == 'paper':
    if n <= 2 * f + 2:
      raise ValueError(f"{name}: convention='paper' scores over the n - f - 2 closest workers, with the paper's "
                       f'guarantee (Blanchard et al. 2017, Prop. 1) for n > 2f + 2 only; got n={n}, f={f}')
    return n - f - 2
  k = n - f - 1 if convention == 'byzfl' else max(1, n - f - 2)
  return max(min(k, n - 1), 1) if n > 1 else 0


def _krum_scores(stacked, f, convention, name):
  n = num_workers(stacked)
  check_f(f, n, name)
  k = krum_neighbours(n, f, convention, name)
  d2 = sq_distances(gram_stats(rows(stacked)))
  if k == 0:
    return jnp.zeros((n,), d2.dtype)
  # The k nearest other workers: drop column i by sending it to +inf, keep the k smallest.
  others = jnp.where(jnp.eye(n, dtype=bool), jnp.inf, d2)
  nearest = -lax.top_k(-others, k)[0]
  return jnp.sum(nearest, axis=1)


def krum(stacked: PyTree, *, f: int = 0, key: jax.Array | None = None, convention: str = 'byzfl') -> PyTree:
  r"""Krum (Blanchard et al. 2017, arXiv 1703.02757): the update with the smallest sum of squared distances to
  its nearest neighbours.

  .. math:: \mathrm{Krum}_f = x_{i^\star}, \quad i^\star = \arg\min_i \sum_{j \in N_i} \|x_i - x_j\|^2

  How many neighbours N_i counts is where the paper and the libraries differ (:func:`krum_neighbours`):

  - ``convention='byzfl'`` (default): the n - f - 1 nearest other workers, ByzFL's ``Krum(f)`` (it ranks by their
    *mean* squared distance, the same order). The default because ByzFL's fixtures are the tests' reference.
  - ``convention='paper'``: the n - f - 2 nearest, the paper's score (Blanchard et al., Section 4: the sum of
    squared distances to the n - f - 2 closest vectors); raises unless n > 2f + 2, the paper's assumption for its
    guarantee (Proposition 1).
  - ``convention='flower'``: max(1, n - f - 2), Flower's ``aggregate_krum``: the paper's count, floored at one.

  ``'byzfl'`` and ``'flower'`` accept any f < n/2, as those libraries do (with n <= 2f + 2 the score is still
  defined); the paper's guarantee then does not apply, so use ``convention='paper'`` to have n > 2f + 2
  enforced.

  Ties: the lowest index (ByzFL's fixture ``[[1,2,3],[4,5,6],[7,8,9]]``, f=1 -> ``[1,2,3]``). Non-finite rows have
  infinite distance to all others, hence an infinite score; they are chosen only if every score is infinite.

  Args:
    stacked: pytree of updates with a leading worker axis of size n.
    f: number of faulty workers; 0 <= f < n/2.
    key: unused.
    convention: ``'byzfl'``, ``'paper'`` or ``'flower'``.

  Returns:
    One of the inputs (one worker's update).

  >>> import jax.numpy as jnp
  >>> krum(jnp.array([[1., 2., 3.], [4., 5., 6.], [7., 8., 9.]]), f=1)
  Array([1., 2., 3.], dtype=float32)
  """
  del key
  scores = _krum_scores(stacked, f, convention, 'krum')
  best = jnp.argmin(scores)
  return jax.tree.map(lambda x: x[best].astype(compute_dtype(x)), stacked)


def multi_krum(stacked: PyTree, *, f: int = 0, key: jax.Array | None = None, m: int | None = None,
               convention: str = 'byzfl') -> PyTree:
  r"""Multi-Krum (Blanchard et al. 2017, arXiv 1703.02757): the mean of the m updates with the lowest Krum scores.

  .. math:: \mathrm{MultiKrum}_{f,m} = \frac{1}{m}\sum_{j=1}^{m} x_{\pi(j)}, \quad \pi \text{ sorts the Krum scores}

  **Definition implemented** (default): ByzFL's ``MultiKrum(f)`` -- scores over the n - f - 1 nearest other
  workers (ranked by their mean squared distance, equivalently the sum) and m = n - f selected.
  ``convention='paper'`` scores over the n - f - 2 nearest, as the paper's Krum (it leaves m free);
  ``convention='flower'`` over max(1, n - f - 2) (Flower's ``aggregate_krum`` with ``to_keep = m``); Flower's
  default m is then whatever the caller passes. See :func:`krum`, also for the f each convention accepts
  (n > 2f + 2 with ``'paper'``, f < n/2 otherwise). Ties: lowest index first. Non-finite rows have infinite
  distance to all others, hence an infinite score: they are averaged in only when fewer than m rows have a finite
  score (and then make the output non-finite).

  Args:
    stacked: pytree of updates with a leading worker axis of size n.
    f: number of faulty workers; 0 <= f < n/2.
    key: unused.
    m: number of updates averaged; default n - f.
    convention: ``'byzfl'``, ``'paper'`` or ``'flower'``.

  Returns:
    One update.

  >>> import jax.numpy as jnp
  >>> multi_krum(jnp.array([[1., 2., 3.], [4., 5., 6.], [7., 8., 9.]]), f=1)
  Array([2.5, 3.5, 4.5], dtype=float32)
  """
  del key
  n = num_workers(stacked)
  scores = _krum_scores(stacked, f, convention, 'multi_krum')
  m = n - f if m is None else m
  if not checks.is_int(m) or not 1 <= m <= n:
    raise ValueError(f'multi_krum: m must be an integer in [1, n={n}], got {m!r}')
  return combine(stacked, uniform_over(select_lowest(scores, m), n, scores.dtype))


def nearest_neighbour_average(stacked: PyTree, *, f: int = 0, key: jax.Array | None = None,
                              pivot: int | jax.Array | PyTree = 0) -> PyTree:
  r"""Nearest-neighbour averaging, NNA (MoNNA's mixing; Farhadkhani et al. 2023, arXiv 2209.10931): the mean of
  the n - f updates closest to a pivot.

  .. math:: \mathrm{NNA}_f(x_1..x_n; p) = \frac{1}{n-f}\sum_{j \in N(p)} x_j, \quad
     N(p) = \text{the } n-f \text{ nearest } x_j \text{ to } p

  With ``pivot`` an index i this is ByzFL's ``MoNNA(f, idx=i)`` (the pivot is then always among its own
  neighbours); it may also be a vector with the structure of one update (MoNNA's own half-step model). Distances
  are computed directly from the pivot (n of them, no Gram form needed). Ties: lowest index. Non-finite rows are at
  infinite distance.

  Args:
    stacked: pytree of updates with a leading worker axis of size n.
    f: number of faulty workers; 0 <= f < n/2.
    key: unused.
    pivot: a worker index (int or traced integer scalar) or a pytree like one update.

  Returns:
    One update.

  >>> import jax.numpy as jnp
  >>> nearest_neighbour_average(jnp.array([[1., 2., 3.], [4., 5., 6.], [7., 8., 9.]]), f=1, pivot=2)
  Array([5.5, 6.5, 7.5], dtype=float32)
  """
  del key
  n = num_workers(stacked)
  check_f(f, n, 'nearest_neighbour_average')
  rs = rows(stacked)
  finite = finite_rows(rs)
  if _is_index(pivot):
    p = [r[pivot] for r in rs]
  else:
    p = [jnp.reshape(v, (-1,)).astype(r.dtype) for v, r in zip(jax.tree.leaves(pivot), rs)]
  safe = zero_nonfinite(rs, finite)
  d2 = jnp.where(finite, sum(row_sums((r - v) ** 2) for r, v in zip(safe, p)), jnp.inf)
  return combine(stacked, uniform_over(select_lowest(d2, n - f), n, d2.dtype))


def _is_index(pivot) -> bool:
  if checks.is_int(pivot):
    return True
  return hasattr(pivot, 'dtype') and jnp.ndim(pivot) == 0 and jnp.issubdtype(pivot.dtype, jnp.integer)
