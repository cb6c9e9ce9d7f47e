"""Coordinate-wise order statistics: the median and the trimmed mean (Yin et al. 2018, arXiv 1803.01498).

Rules with the signature of :mod:`decentral.robust.aggregation`, ``rule(stacked, *, f, key) -> aggregate``,
working leaf by leaf and coordinate by coordinate. A NaN sorts as +inf; values, not indices, are returned, so
ties do not matter. Computation in float32 (float64 for float64 input).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from decentral.stacked import check_f, col_sums, num_workers, rows, unrows

PyTree = Any


SORT_ABOVE = 256  # workers; below, order statistics come from ranks (XLA's CPU sort is slow on a short axis)


def _order_statistic_sums(stacked, ranges):
  """Per leaf and per range [lo, hi): the sum over each coordinate of its sorted values of rank lo..hi-1.

  NaN is mapped to +inf first (it sorts last). For n <= SORT_ABOVE the ranks are counted -- rank_i = #{j: x_j <
  x_i} + #{j < i: x_j = x_i}, a permutation even with ties -- in a loop over i with O(n d) memory and O(n^2 d)
  vectorised comparisons, 5-15x faster than ``jnp.sort`` along the worker axis on CPU for n <= 32; above, sort.
  """
  n = num_workers(stacked)
  out = []
  for r in rows(stacked):
    r = jnp.where(jnp.isnan(r), jnp.inf, r)
    if n > SORT_ABOVE:
      s = jnp.sort(r, axis=0)
      out.append([col_sums(s[lo:hi]) for lo, hi in ranges])
      continue
    index = jnp.arange(n)

    def body(i, sums, r=r, index=index):
      xi = r[i]
      rank = jnp.sum((r < xi) | ((r == xi) & (index[:, None] < i)), axis=0)
      return tuple(acc + jnp.where((rank >= lo) & (rank < hi), xi, 0) for acc, (lo, hi) in zip(sums, ranges))

    out.append(list(lax.fori_loop(0, n, body, tuple(jnp.zeros_like(r[0]) for _ in ranges))))
  return out


def median(stacked: PyTree, *, f: int = 0, key: jax.Array | None = None) -> PyTree:
  r"""Coordinate-wise median (Yin et al. 2018, arXiv 1803.01498).

  .. math:: [\mathrm{Med}(x_1..x_n)]_k = \mathrm{median}([x_1]_k, \dots, [x_n]_k)

  For even n the mean of the two middle values (NumPy's and ByzFL's convention). A NaN coordinate sorts as +inf,
  so fewer than n/2 non-finite values per coordinate leave the output finite. No ties to break (values, not
  indices, are returned).

  Args:
    stacked: pytree of updates with a leading worker axis of size n.
    f: unused (the median tolerates any f < n/2); accepted for the common signature.
    key: unused.

  Returns:
    One update (the structure of a single worker's update).

  >>> import jax.numpy as jnp
  >>> median(jnp.array([[1., 2.], [3., 9.], [2., 100.]]))
  Array([2., 9.], dtype=float32)
  """
  del key
  n = num_workers(stacked)
  check_f(f, n, 'median')
  lo, hi = (n - 1) // 2, n // 2
  out = [(a + b) / 2 for a, b in _order_statistic_sums(stacked, [(lo, lo + 1), (hi, hi + 1)])]
  return unrows(out, stacked)


def trimmed_mean(stacked: PyTree, *, f: int = 0, key: jax.Array | None = None) -> PyTree:
  r"""Coordinate-wise trimmed mean (Yin et al. 2018, arXiv 1803.01498): drop the f largest and f smallest.

  .. math:: [\mathrm{TrMean}_f]_k = \frac{1}{n-2f}\sum_{j=f+1}^{n-f} [x_{\pi_k(j)}]_k,
     \quad \pi_k \text{ sorts coordinate } k

  NaN sorts as +inf, so up to f non-finite values per side are trimmed. Values, not indices, are returned, so
  ties do not matter. f = 0 is the mean.

  Args:
    stacked: pytree of updates with a leading worker axis of size n.
    f: number of values trimmed at each end of every coordinate; 0 <= f < n/2.
    key: unused.

  Returns:
    One update.

  >>> import jax.numpy as jnp
  >>> trimmed_mean(jnp.array([[1.], [2.], [3.], [1e6]]), f=1)
  Array([2.5], dtype=float32)
  """
  del key
  n = num_workers(stacked)
  check_f(f, n, 'trimmed_mean')
  out = [total / (n - 2 * f) for (total,) in _order_statistic_sums(stacked, [(f, n - f)])]
  return unrows(out, stacked)
