"""Stacked updates: the helpers every rule, attack and pre-aggregation shares.

A *stacked* pytree holds one update per worker along a leading axis of size n on every leaf. Rules
(:mod:`decentral.robust`), attacks (:mod:`decentral.robust.attacks`), pre-aggregations and the decentralized
methods (:mod:`decentral.p2p`) all view it the same way:

- a worker's update is the concatenation of its leaves, so each leaf becomes an (n, d_leaf) matrix of *rows*
  (:func:`rows`, :func:`leaf_rows`) in the compute dtype (float32, float64 for float64 input), and results go back
  into the structure of one update with :func:`unrows`;
- a *non-finite row* is a worker with a NaN or inf anywhere (:func:`finite_rows`); distances put it at infinity
  from every other row (:func:`pairwise_sq_distances`), weighted combinations give it weight 0 exactly
  (:func:`combine`);
- sums over coordinates or workers go through ``matmul`` (:func:`row_sums`, :func:`col_sums`): XLA's CPU float
  reductions are scalar loops (strict FP order), 50-200x slower than BLAS on (n, d) stacks;
- pairwise distances use the Gram form ``|x_i|^2 + |x_j|^2 - 2 <x_i, x_j>`` (one n x n matrix product, not n^2
  difference vectors) on rows first centred at the finite row of median norm, so that a large offset shared by
  all workers (the model itself, in decentralized rules) does not cost float32 precision;
- ties in a selection go to the lowest worker index (:func:`select_lowest`).

>>> import jax.numpy as jnp
>>> x = {'w': jnp.array([[1., 2.], [3., 4.], [jnp.nan, 0.]]), 'b': jnp.ones((3,))}
>>> num_workers(x), finite_rows(rows(x)).tolist()
(3, [True, True, False])
>>> combine(x, jnp.array([0.5, 0.5, 0.]))
{'b': Array(1., dtype=float32), 'w': Array([2., 3.], dtype=float32)}
"""

from __future__ import annotations

from typing import Any, Sequence

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from decentral import checks

PyTree = Any
HIGHEST = lax.Precision.HIGHEST


def num_workers(stacked: PyTree) -> int:
  """The size n of the leading worker axis, checked to be the same on every leaf."""
  leaves = jax.tree.leaves(stacked)
  if not leaves:
    raise ValueError('stacked updates must have at least one array leaf')
  sizes = {np.shape(x)[0] if np.ndim(x) else None for x in leaves}
  if len(sizes) != 1 or None in sizes:
    raise ValueError(f'every leaf of the stacked updates needs the same leading worker axis, got sizes {sizes}')
  return sizes.pop()


def check_f(f: int, n: int, name: str, *, strict_half: bool = True) -> None:
  """Fails early on a bad number of faulty workers: f must be an integer with 0 <= f < n/2."""
  checks.non_negative_int(f, f'{name}: f')
  if strict_half and 2 * f >= n:
    raise ValueError(f'{name}: f={f} faulty workers need f < n/2, got n={n}')


def compute_dtype(x) -> jnp.dtype:
  """float32, or the input's dtype when wider (float64): the dtype rules compute in."""
  return jnp.promote_types(jnp.asarray(x).dtype, jnp.float32)


def leaf_rows(x: jax.Array) -> jax.Array:
  """One stacked leaf as an (n, d_leaf) matrix in the compute dtype."""
  return x.reshape(x.shape[0], -1).astype(compute_dtype(x))


def rows(stacked: PyTree) -> list[jax.Array]:
  """Each leaf as an (n, d_leaf) matrix in the compute dtype."""
  n = num_workers(stacked)
  return [x.reshape(n, -1).astype(compute_dtype(x)) for x in jax.tree.leaves(stacked)]


def unrows(vectors: Sequence[jax.Array], stacked: PyTree, lead: tuple[int, ...] = ()) -> PyTree:
  """Puts per-leaf ``(*lead, d_leaf)`` arrays back into the structure of one worker's update."""
  leaves, treedef = jax.tree.flatten(stacked)
  return jax.tree.unflatten(treedef, [v.reshape(lead + x.shape[1:]) for v, x in zip(vectors, leaves)])


def finite_rows(rs: Sequence[jax.Array]) -> jax.Array:
  """(n,) bool: the workers whose every coordinate is finite."""
  # x * 0 is 0 for finite x and NaN for inf or NaN, so a row's sum of them is finite iff the row is: one float sum,
  # several times faster on CPU than XLA's boolean all-reduce.
  return jnp.isfinite(sum(jnp.sum(r * 0, axis=1) for r in rs))


def zero_nonfinite(rs: Sequence[jax.Array], finite: jax.Array) -> list[jax.Array]:
  """The rows with every non-finite row replaced by zeros (so products with zero weights stay exact)."""
  return [jnp.where(finite[:, None], r, 0) for r in rs]


def row_sums(a: jax.Array) -> jax.Array:
  """(m, d) -> (m,) by a matrix-vector product: XLA's CPU float reductions are scalar loops (strict FP order),
  50-200x slower than BLAS here, so every sum over coordinates or workers goes through ``matmul``."""
  return jnp.matmul(a, jnp.ones((a.shape[-1],), a.dtype), precision=HIGHEST)


def col_sums(a: jax.Array) -> jax.Array:
  """(n, d) -> (d,), the sum over workers, by a vector-matrix product (see :func:`row_sums`)."""
  return jnp.matmul(jnp.ones((a.shape[0],), a.dtype), a, precision=HIGHEST)


def sq_norms(rs: Sequence[jax.Array]) -> jax.Array:
  """(n,) squared Euclidean norms of the rows, summed over the leaves."""
  return sum(row_sums(r * r) for r in rs)


FUSED_ROWS_MAX = 256  # rows; up to here weighted_row_sum is one fused pass over the rows, above a matrix product


def weighted_row_sum(r: jax.Array, w: jax.Array, centre: jax.Array | None = None) -> jax.Array:
  """sum_i w_i (r_i - centre) over the rows of an (n, d) matrix (centre 0 when None), exactly 0 for the rows of
  weight 0 even when they hold NaN or inf.

  For n <= FUSED_ROWS_MAX one fused pass over the rows, which neither copies the stack (a matrix product needs the
  non-finite rows zeroed in a copy first) nor reduces along a row (XLA:CPU's slow case, see :func:`row_sums`).
  """
  shifted = (lambda x: x) if centre is None else (lambda x: x - centre)
  if r.shape[0] <= FUSED_ROWS_MAX:
    terms = [jnp.where(w[i] != 0, w[i] * shifted(r[i]), 0) for i in range(r.shape[0])]
    return functools.reduce(jnp.add, terms)
  return jnp.matmul(w, jnp.where((w != 0)[:, None], shifted(r), 0), precision=HIGHEST)


def gram_matrix(rs: Sequence[jax.Array]) -> jax.Array:
  """(n, n) inner products <x_i, x_j> of the rows, summed over the leaves."""
  return sum(jnp.matmul(r, r.T, precision=HIGHEST) for r in rs)


def cosine_similarities(rs: Sequence[jax.Array]) -> jax.Array:
  """(n, n) cosines of the (finite, zeroed) rows; 0 where either row has zero norm."""
  norms = jnp.sqrt(sq_norms(rs))
  denom = norms[:, None] * norms[None, :]
  return jnp.where(denom > 0, gram_matrix(rs) / jnp.where(denom > 0, denom, 1.0), 0.0)


GRAM_TILE_BYTES = 1 << 19  # the column tile of centred_gram, small enough for the cache


def centred_gram(r: jax.Array, finite: jax.Array, centre: jax.Array) -> jax.Array:
  """(n, n) Gram matrix of the rows r_i - centre, with the non-finite rows zeroed, summed over column tiles.

  Each tile is centred, masked and multiplied while in cache: no centred copy of the stack is written, and XLA:CPU's
  products of short and wide matrices run several times faster on tiles than in one piece (measured 15x at n = 32,
  d = 1e6).
  """
  n, d = r.shape
  width = max(128, GRAM_TILE_BYTES // (n * r.dtype.itemsize) // 128 * 128)

  def tile_gram(t, c):
    t = jnp.where(finite[:, None], t - c, 0)
    return jnp.matmul(t, t.T, precision=HIGHEST)

  if d <= width:
    return tile_gram(r, centre)

  def body(i, gram):
    start = jnp.minimum(i * width, d - width)  # the last tile overlaps its neighbour: its repeated columns masked
    t = lax.dynamic_slice_in_dim(r, start, width, 1)
    t = jnp.where(start + jnp.arange(width) >= i * width, t, 0)
    c = jnp.where(start + jnp.arange(width) >= i * width, lax.dynamic_slice_in_dim(centre, start, width, 0), 0)
    return gram + tile_gram(t, c)

  return lax.fori_loop(0, -(-d // width), body, jnp.zeros((n, n), r.dtype))


def pairwise_sq_distances(rs: Sequence[jax.Array], finite: jax.Array) -> jax.Array:
  """(n, n) squared Euclidean distances by the Gram form; inf between a non-finite row and any other row."""
  # Squared norms in one fused pass; the Gram matrix in a second (centred_gram), with no copy of the stack.
  norms = jnp.where(finite, sum(jnp.sum(jnp.where(finite[:, None], r, 0) ** 2, axis=1) for r in rs), jnp.inf)
  # Centre at the finite row of median norm (ties: lowest index): removes a shared offset before the Gram form.
  count = jnp.sum(finite)
  centre = jnp.argsort(norms, stable=True)[jnp.maximum(count - 1, 0) // 2]
  gram = sum(centred_gram(r, finite, jnp.where(finite[centre], r[centre], 0)) for r in rs)
  diag = jnp.diagonal(gram)
  d2 = jnp.maximum(diag[:, None] + diag[None, :] - 2 * gram, 0)
  both = finite[:, None] & finite[None, :]
  eye = jnp.eye(len(finite), dtype=bool)
  return jnp.where(eye, 0, jnp.where(both, d2, jnp.inf))


def combine(stacked: PyTree, weights: jax.Array) -> PyTree:
  """sum_i w_i x_i for w of shape (n,), or the rows W @ X for W of shape (m, n), over the pytree.

  Zero weights on non-finite rows are exact (no 0 * inf); an output that puts nonzero weight on a non-finite
  row is NaN.
  """
  rs = rows(stacked)
  finite = finite_rows(rs)
  safe = zero_nonfinite(rs, finite)
  w = weights.astype(safe[0].dtype)
  poisoned = jnp.matmul((w != 0).astype(w.dtype), (~finite).astype(w.dtype)) > 0
  out = []
  for r in safe:
    y = jnp.matmul(w, r, precision=HIGHEST)
    out.append(jnp.where(poisoned[..., None], jnp.nan, y))
  return unrows(out, stacked, lead=tuple(weights.shape[:-1]))


def uniform_over(chosen: jax.Array, n: int, dtype) -> jax.Array:
  """(n,) weights 1/len(chosen) on the ``chosen`` indices, 0 elsewhere: the mean of a selection."""
  return jnp.zeros((n,), dtype).at[chosen].add(1.0 / chosen.shape[0])


def select_lowest(scores: jax.Array, k: int) -> jax.Array:
  """Indices of the k smallest scores, ties towards the lowest index (``lax.top_k`` keeps index order)."""
  return lax.top_k(-scores, k)[1]
