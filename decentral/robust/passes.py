"""Passes over the stacked rows that XLA:CPU runs near memory bandwidth, shared by the rules of this package.

XLA:CPU reduces over the leading (worker) axis of an (n, d) matrix with a scalar loop, ~100x slower than one read
of the matrix (measured here), while its fused elementwise loops and matrix products run near bandwidth; along a row
its reduction costs 2-4 reads, still the fastest way we measured to get row norms (:func:`row_sq_distances`). So:

- a sum over workers is a fused sum of the rows (one elementwise loop, fastest for a few rows) or a product
  ``w @ X`` (:func:`sum_of_rows`, :func:`weighted_sum`);
- products of an (m, n) matrix with the stack run on column tiles that stay in cache (:func:`mix`);
- the distance rules get the Gram matrix with the squared norms and the finite rows in one pass over column tiles
  (:func:`gram_stats`).

Non-finite rows follow :mod:`decentral.stacked`: a row with a NaN or inf is non-finite; weighted sums give it weight
0 exactly when its weight is 0.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
from jax import lax

HIGHEST = lax.Precision.HIGHEST
FUSED_SUM_MAX = 16  # rows; up to here a fused sum of the rows beats a product w @ X on CPU (measured at d = 1e5, 1e6)
TILE_BYTES = 1 << 21  # a column tile of mix: in cache while used, and few enough tiles for the loop's overhead
GRAM_TILE_BYTES = 1 << 19  # a column tile of gram_stats, used three times (norms, centring, product): in L2


def pairwise_sum(terms: Sequence[jax.Array]) -> jax.Array:
  """The sum of equally shaped arrays as a balanced tree, which XLA fuses into one loop: its depth is log2(n), not
  a chain of n dependent additions (several times slower for n = 128)."""
  terms = list(terms)
  while len(terms) > 1:
    terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
  return terms[0]


def sum_of_rows(r: jax.Array) -> jax.Array:
  """(n, d) -> (d,), the sum over workers: a fused :func:`pairwise_sum` of the rows for n <= FUSED_SUM_MAX, the
  product ``ones @ r`` above. NaN and inf propagate as in any sum."""
  n = r.shape[0]
  if n > FUSED_SUM_MAX:
    return jnp.matmul(jnp.ones((n,), r.dtype), r, precision=HIGHEST)
  return pairwise_sum([r[i] for i in range(n)])


def tile_width(n: int, itemsize: int, tile_bytes: int) -> int:
  """Columns of an (n, width) tile of about ``tile_bytes``, a multiple of 128, at least 128."""
  return max(128, tile_bytes // (n * itemsize) // 128 * 128)


def over_tiles(fn: Callable, r: jax.Array, vectors: Sequence[jax.Array], init, tile_bytes: int):
  """Folds ``acc = fn(acc, tile, *vector_tiles, start)`` over the column tiles of the (n, d) matrix ``r`` and the
  matching slices of the (d,) ``vectors``: full tiles in a ``fori_loop``, the remainder as one narrower tile."""
  d = r.shape[1]
  width = min(d, tile_width(r.shape[0], r.dtype.itemsize, tile_bytes))
  full = d // width

  def body(i, acc):
    start = i * width
    return fn(acc, lax.dynamic_slice_in_dim(r, start, width, 1),
              *[lax.dynamic_slice_in_dim(v, start, width, 0) for v in vectors], start)

  acc = lax.fori_loop(0, full, body, init) if full > 1 else (body(0, init) if full else init)
  if d % width:
    acc = fn(acc, r[:, full * width:], *[v[full * width:] for v in vectors], full * width)
  return acc


def row_sq_distances(r: jax.Array, centre: jax.Array) -> jax.Array:
  """(n,) squared distances |r_i - centre|^2 of the rows of an (n, d) matrix, XLA's fused reduction along the rows
  (no difference written to memory; as fast as sums along tiles by products with ones, measured at n = 8 to 128).
  NaN or inf for a non-finite row."""
  return jnp.sum((r - centre) ** 2, axis=1)


FUSED_WEIGHTED_MAX = 256  # rows; up to here weighted_sum is one fused pass over the rows, above a product


def weighted_sum(r: jax.Array, w: jax.Array, centre: jax.Array | None = None) -> jax.Array:
  """sum_i w_i (r_i - centre) over the rows of an (n, d) matrix (centre 0 when None), exactly 0 for the rows of
  weight 0 even when they hold NaN or inf.

  For n <= FUSED_WEIGHTED_MAX one fused pass over the rows (a :func:`pairwise_sum`), which neither copies the stack
  (a product needs the non-finite rows zeroed first) nor cancels digits (``w @ X - sum(w) centre`` would, for a
  large centre); above, the product ``w @ where(w != 0, r - centre, 0)``.
  """
  n, d = r.shape
  c = jnp.zeros((d,), r.dtype) if centre is None else centre
  if n <= FUSED_WEIGHTED_MAX:
    return pairwise_sum([jnp.where(w[i] != 0, w[i] * (r[i] - c), 0) for i in range(n)])
  return jnp.matmul(w, jnp.where((w != 0)[:, None], r - c, 0), precision=HIGHEST)


def mix(r: jax.Array, weights: jax.Array, finite: jax.Array) -> jax.Array:
  """The rows ``weights @ r`` ((m, n) weights, (n, d) rows) with the non-finite rows (``finite`` False) given weight
  0 exactly, by a product per column tile (XLA:CPU's product of an (n, n) and a short, wide matrix is several times
  faster in tiles); an output row that puts nonzero weight on a non-finite row is NaN, as in
  :func:`decentral.stacked.combine`."""
  m, d = weights.shape[0], r.shape[1]
  w = weights.astype(r.dtype)

  def put(out, t, start):
    y = jnp.matmul(w, jnp.where(finite[:, None], t, 0), precision=HIGHEST)
    return lax.dynamic_update_slice_in_dim(out, y, start, 1)

  out = over_tiles(put, r, [], jnp.zeros((m, d), r.dtype), TILE_BYTES)
  poisoned = jnp.matmul((w != 0).astype(w.dtype), (~finite).astype(w.dtype)) > 0
  return jnp.where(poisoned[:, None], jnp.nan, out)


class GramStats(NamedTuple):
  """What one pass over the stack gives the distance rules: ``sq_norms`` (n,) the squared norms |x_i|^2 (NaN for a
  non-finite row, inf for a finite row whose square overflows), ``finite`` (n,) bool, and ``gram`` (n, n) the
  inner products <x_i - c, x_j - c> of the rows translated by one vector c near the data, 0 in the rows and
  columns of the non-finite rows."""

  sq_norms: jax.Array
  finite: jax.Array
  gram: jax.Array


def _tile_stats(acc, t, start):
  """Adds one (n, w) column tile's squared norms, finiteness and centred Gram matrix to ``acc``.

  The tile is translated by the tile of its finite row of median tile norm (ties: lowest index): a translation
  changes no distance, removes an offset shared by the rows (the model, in decentralized rules) before the Gram
  form squares it, and cannot be moved far by fewer than n/2 faulty rows. Choosing it per tile, while the tile is
  in cache, saves the separate pass over the stack that one global choice needs.
  """
  del start
  # t * t + t * 0 is t^2 for finite t and NaN for inf or NaN: one product with ones gives the norms and finiteness.
  sq = jnp.matmul(t * t + t * 0, jnp.ones((t.shape[1],), t.dtype), precision=HIGHEST)
  finite = ~jnp.isnan(sq)
  count = jnp.sum(finite)
  centre = jnp.argsort(jnp.where(finite, sq, jnp.inf), stable=True)[jnp.maximum(count - 1, 0) // 2]
  c = jnp.where(finite[:, None], t - jnp.where(finite[centre], t[centre], 0), 0)
  return acc[0] + sq, acc[1] & finite, acc[2] + jnp.matmul(c, c.T, precision=HIGHEST)


def gram_stats(rs: Sequence[jax.Array]) -> GramStats:
  """:class:`GramStats` of the rows ``rs`` (one (n, d_leaf) matrix per leaf) in one pass over column tiles.

  Each tile is read from memory once and used while in cache, so the pass costs one read of the stack plus the
  products, the floor of any rule that needs the Gram matrix; XLA:CPU also multiplies short, wide matrices several
  times faster in tiles than in one piece.
  """
  n = rs[0].shape[0]
  dtype = jnp.result_type(*rs)  # leaves of several dtypes are summed in the widest, as a sum of their Grams would be
  acc = (jnp.zeros((n,), dtype), jnp.ones((n,), bool), jnp.zeros((n, n), dtype))
  for r in rs:
    acc = over_tiles(_tile_stats, r.astype(dtype), [], acc, GRAM_TILE_BYTES)
  sq, finite, gram = acc
  return GramStats(sq, finite, jnp.where(finite[:, None] & finite[None, :], gram, 0))


def sq_distances(stats: GramStats) -> jax.Array:
  """(n, n) squared Euclidean distances from the Gram matrix; 0 on the diagonal, inf between a non-finite row and
  any other row."""
  diag = jnp.diagonal(stats.gram)
  d2 = jnp.maximum(diag[:, None] + diag[None, :] - 2 * stats.gram, 0)
  both = stats.finite[:, None] & stats.finite[None, :]
  n = stats.finite.shape[0]
  return jnp.where(jnp.eye(n, dtype=bool), 0, jnp.where(both, d2, jnp.inf))
