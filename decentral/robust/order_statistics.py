"""Coordinate-wise order statistics: the median and the trimmed mean (Yin et al. 2018, arXiv 1803.01498).

Rules with the signature of :mod:`decentral.robust.aggregation`, ``rule(stacked, *, f, key) -> aggregate``,
working coordinate by coordinate. A NaN sorts as +inf; values, not indices, are returned, so ties do not matter.
Computation in float32 (float64 for float64 input).

Two paths compute the same order statistics (:func:`order_statistic_sum`): on CPU a comparator network
(:func:`compare_exchange`) over the worker rows, run on column tiles that stay in cache (XLA:CPU's sort
along a short axis is 10-30x slower than NumPy's); elsewhere (GPU, TPU) and for very many workers ``jnp.sort``.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from decentral.robust.passes import pairwise_sum
from decentral.stacked import check_f, col_sums, num_workers, rows, unrows

PyTree = Any

NETWORK_MAX = 256  # workers; above, the network (n log^2 n comparators) compiles too slowly: sort instead
TILE_BYTES = 1 << 20  # one column tile of the stack, sized to stay in L2 while the network runs over it
GROUP = 128  # comparators fused together; XLA's fusion of one much larger network takes minutes to compile
METHODS = ('network', 'sort')


def default_method(n: int) -> str:
  """``'network'`` on CPU for n <= NETWORK_MAX workers, ``'sort'`` otherwise (GPU and TPU sorts are fast)."""
  return 'network' if jax.default_backend() == 'cpu' and n <= NETWORK_MAX else 'sort'


@functools.cache
def batcher_network(n: int) -> tuple[tuple[int, int], ...]:
  """Batcher's odd-even merge sort on n wires, as comparators (a, b), a < b, that put the smaller value on a.

  Built for the next power of two; comparators touching the padding wires (which would hold +inf, above every
  value) are no-ops and dropped. n log^2 n / 4 comparators: 19 for n = 8, 191 for 32, 1471 for 128.
  """
  p = 1 << max(n - 1, 0).bit_length()
  out = []
  block = 1
  while block < p:
    k = block
    while k >= 1:
      for j in range(k % block, p - k, 2 * k):
        for i in range(min(k, p - j - k)):
          a, b = i + j, i + j + k
          if a // (2 * block) == b // (2 * block) and b < n:
            out.append((a, b))
      k //= 2
    block *= 2
  return tuple(out)


def selection_network(n: int, f: int) -> tuple[tuple[int, int], ...]:
  """Bubble passes that move the f largest values to wires n-f..n-1 and the f smallest to 0..f-1: 2 f n
  comparators, fewer than a full sort when f is small."""
  out = []
  for p in range(f):
    out += [(i, i + 1) for i in range(n - 1 - p)]
  for p in range(f):
    out += [(i - 1, i) for i in range(n - f - 1, p, -1)]
  return tuple(out)


def prune(network: Sequence[tuple[int, int]], lo: int, hi: int, n: int) -> tuple[tuple[int, int], ...]:
  """The comparators of ``network`` that the sum over its output wires lo..hi-1 depends on.

  Walking backwards: a comparator is dropped when neither output is read later, or when both outputs go untouched
  to the same side of the range (inside it a swap does not change the sum; outside it the values are not read).
  """
  live = [lo <= w < hi for w in range(n)]
  free = [True] * n
  kept = []
  for a, b in reversed(network):
    if not (live[a] or live[b]) or (free[a] and free[b] and live[a] == live[b]):
      continue
    kept.append((a, b))
    live[a] = live[b] = True
    free[a] = free[b] = False
  return tuple(reversed(kept))


@functools.cache
def network_for(n: int, lo: int, hi: int) -> tuple[tuple[int, int], ...]:
  """The smaller of Batcher's sort and, for a trimmed middle [f, n-f), the f-selection passes, each pruned to
  what the sum over sorted positions lo..hi-1 needs."""
  candidates = [prune(batcher_network(n), lo, hi, n)]
  if lo + hi == n:
    candidates.append(prune(selection_network(n, lo), lo, hi, n))
  return min(candidates, key=len)


def compare_exchange(a: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(smaller, larger) elementwise, for NaN-free inputs: one comparison and two selects. ``jnp.minimum`` and
  ``jnp.maximum`` propagate NaN, which costs XLA:CPU several instructions each (measured 1.4-2x slower networks);
  the network replaces NaN by +inf first, so it needs no NaN handling. Equal values may swap (their sum and order
  statistics do not change)."""
  smaller = a < b
  return jnp.where(smaller, a, b), jnp.where(smaller, b, a)


def _network_sum(r: jax.Array, lo: int, hi: int) -> jax.Array:
  """The network path of :func:`order_statistic_sum` on one (n, d) matrix."""
  n, d = r.shape
  network = network_for(n, lo, hi)
  groups = [network[i:i + GROUP] for i in range(0, len(network), GROUP)]

  def tile_sum(t):
    wires = list(jnp.where(jnp.isnan(t), jnp.inf, t))
    for group in groups:
      for a, b in group:
        wires[a], wires[b] = compare_exchange(wires[a], wires[b])
      # Materialise the wires after each group, so that XLA fuses groups, not the whole network.
      wires = list(lax.optimization_barrier(wires))
    return pairwise_sum(wires[lo:hi])

  width = max(128, TILE_BYTES // (n * r.dtype.itemsize) // 128 * 128)
  if d <= width:
    return tile_sum(r)

  def body(i, out):
    start = jnp.minimum(i * width, d - width)  # the last tile overlaps its neighbour instead of being shorter
    return lax.dynamic_update_slice_in_dim(out, tile_sum(lax.dynamic_slice_in_dim(r, start, width, 1)), start, 0)

  return lax.fori_loop(0, -(-d // width), body, jnp.zeros((d,), r.dtype))


def order_statistic_sum(stacked: PyTree, lo: int, hi: int, method: str | None = None) -> list[jax.Array]:
  """Per leaf: the sum over each coordinate of its sorted values of rank lo..hi-1 (0-based), as (d_leaf,) rows.

  NaN counts as +inf (it sorts last). ``method='network'`` runs a comparator network (:func:`network_for`) over
  column tiles, ``'sort'`` sorts with ``jnp.sort``; None picks :func:`default_method`. Both select the same
  values; the sums may differ by float rounding (they add them in another order). Leaves of one dtype are
  concatenated first, so that the network is compiled once.
  """
  n = num_workers(stacked)
  method = default_method(n) if method is None else method
  if method not in METHODS:
    raise ValueError(f'order statistics: method must be one of {METHODS}, got {method!r}')
  rs = rows(stacked)
  if method == 'sort':
    return [col_sums(jnp.sort(jnp.where(jnp.isnan(r), jnp.inf, r), axis=0)[lo:hi]) for r in rs]
  out = [None] * len(rs)
  for dtype in dict.fromkeys(r.dtype for r in rs):
    ids = [i for i, r in enumerate(rs) if r.dtype == dtype]
    total = _network_sum(jnp.concatenate([rs[i] for i in ids], axis=1), lo, hi)
    start = 0
    for i in ids:
      out[i] = total[start:start + rs[i].shape[1]]
      start += rs[i].shape[1]
  return out


def median(stacked: PyTree, *, f: int = 0, key: jax.Array | None = None, method: str | None = None) -> PyTree:
  r"""Coordinate-wise median (Yin et al. 2018, arXiv 1803.01498).

  .. math:: [\mathrm{Med}(x_1..x_n)]_k = \mathrm{median}([x_1]_k, \dots, [x_n]_k)

  For even n the mean of the two middle values (NumPy's and ByzFL's convention). A NaN coordinate sorts as +inf,
  so fewer than n/2 non-finite values per coordinate leave the output finite. No ties to break (values, not
  indices, are returned).

  Args:
    stacked: pytree of updates with a leading worker axis of size n.
    f: unused (the median tolerates any f < n/2); accepted for the common signature.
    key: unused.
    method: ``'network'``, ``'sort'`` or None (by backend and n; :func:`order_statistic_sum`).

  Returns:
    One update (the structure of a single worker's update).

  >>> import jax.numpy as jnp
  >>> median(jnp.array([[1., 2.], [3., 9.], [2., 100.]]))
  Array([2., 9.], dtype=float32)
  """
  del key
  n = num_workers(stacked)
  check_f(f, n, 'median')
  lo, hi = (n - 1) // 2, n // 2 + 1  # one middle value for odd n, the two middle ones for even n
  out = [total / (hi - lo) for total in order_statistic_sum(stacked, lo, hi, method)]
  return unrows(out, stacked)


def trimmed_mean(stacked: PyTree, *, f: int = 0, key: jax.Array | None = None, method: str | None = None
                 ) -> PyTree:
  r"""Coordinate-wise trimmed mean (Yin et al. 2018, arXiv 1803.01498): drop the f largest and f smallest.

  .. math:: [\mathrm{TrMean}_f]_k = \frac{1}{n-2f}\sum_{j=f+1}^{n-f} [x_{\pi_k(j)}]_k,
     \quad \pi_k \text{ sorts coordinate } k

  NaN sorts as +inf, so up to f non-finite values per side are trimmed. Values, not indices, are returned, so
  ties do not matter. f = 0 is the mean.

  Args:
    stacked: pytree of updates with a leading worker axis of size n.
    f: number of values trimmed at each end of every coordinate; 0 <= f < n/2.
    key: unused.
    method: ``'network'``, ``'sort'`` or None (by backend and n; :func:`order_statistic_sum`).

  Returns:
    One update.

  >>> import jax.numpy as jnp
  >>> trimmed_mean(jnp.array([[1.], [2.], [3.], [1e6]]), f=1)
  Array([2.5], dtype=float32)
  """
  del key
  n = num_workers(stacked)
  check_f(f, n, 'trimmed_mean')
  out = [total / (n - 2 * f) for total in order_statistic_sum(stacked, f, n - f, method)]
  return unrows(out, stacked)
