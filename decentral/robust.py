"""Byzantine-robust aggregation rules: pure functions of the stacked updates of n workers.

Every rule has the signature of :mod:`decentral.aggregate`, ``rule(stacked, *, f, key) -> aggregate``, where
``stacked`` is any pytree whose leaves carry a leading worker axis of size n. Distance-based rules treat a worker's
update as the concatenation of all its leaves (one vector of d coordinates); coordinate-wise rules work leaf by
leaf. Computation happens in float32 (float64 when the input is float64); :func:`decentral.aggregate` casts the
result back to the update's dtype.

Conventions shared by all rules (each docstring restates what applies to it):

- **Ties** are broken towards the lowest worker index (``lax.top_k`` and ``argmin`` order), which reproduces
  ByzFL's fixtures (its ``argpartition`` happens to pick the lowest index on them).
- **Non-finite rows.** A worker whose update holds any NaN or inf is a *non-finite row*. Distance-based rules put
  it at infinite distance from every other worker (and 0 from itself), so it is never among the neighbours of a
  finite row while at least n - f rows are finite; weighting rules give it weight 0. Coordinate-wise rules sort a
  NaN as +inf. With at most f non-finite rows the output of every robust rule here is finite.
- **Pairwise distances** use the Gram form ``|x_i|^2 + |x_j|^2 - 2 <x_i, x_j>`` (one n x n matrix product, not n^2
  difference vectors), on rows first centred at the finite row of median norm so that a large offset shared by
  all workers (e.g. the model itself, in decentralized rules) does not cost float32 precision.

References: ByzFL (LPD-EPFL/byzfl) for the definitions and fixtures, Flower for its Krum convention.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from decentral.aggregate import StatefulRule, register_rule

PyTree = Any
_HIGHEST = lax.Precision.HIGHEST


# ----------------------------------------------------------------------------------------------------------------
# Shared helpers: rows, finiteness, distances, weighted combinations.


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
  if isinstance(f, bool) or not isinstance(f, (int, np.integer)) or f < 0:
    raise ValueError(f'{name}: f must be a non-negative integer, got {f!r}')
  if strict_half and 2 * f >= n:
    raise ValueError(f'{name}: f={f} faulty workers need f < n/2, got n={n}')


def compute_dtype(x) -> jnp.dtype:
  return jnp.promote_types(jnp.asarray(x).dtype, jnp.float32)


def rows(stacked: PyTree) -> list[jax.Array]:
  """Each leaf as an (n, d_leaf) matrix in the compute dtype."""
  n = num_workers(stacked)
  return [x.reshape(n, -1).astype(compute_dtype(x)) for x in jax.tree.leaves(stacked)]


def unrows(vectors: Sequence[jax.Array], stacked: PyTree, lead: tuple[int, ...] = ()) -> PyTree:
  """Puts per-leaf (*lead, d_leaf) arrays back into the structure of one worker's update."""
  leaves, treedef = jax.tree.flatten(stacked)
  return jax.tree.unflatten(treedef, [v.reshape(lead + x.shape[1:]) for v, x in zip(vectors, leaves)])


def finite_rows(rs: Sequence[jax.Array]) -> jax.Array:
  """(n,) bool: the workers whose every coordinate is finite."""
  return functools.reduce(jnp.logical_and, [jnp.all(jnp.isfinite(r), axis=1) for r in rs])


def zero_nonfinite(rs: Sequence[jax.Array], finite: jax.Array) -> list[jax.Array]:
  return [jnp.where(finite[:, None], r, 0) for r in rs]


def row_sums(a: jax.Array) -> jax.Array:
  """(m, d) -> (m,) by a matrix-vector product: XLA's CPU float reductions are scalar loops (strict FP order),
  50-200x slower than BLAS here, so every sum over coordinates or workers goes through ``matmul``."""
  return jnp.matmul(a, jnp.ones((a.shape[-1],), a.dtype), precision=_HIGHEST)


def col_sums(a: jax.Array) -> jax.Array:
  """(n, d) -> (d,), the sum over workers, by a vector-matrix product (see :func:`row_sums`)."""
  return jnp.matmul(jnp.ones((a.shape[0],), a.dtype), a, precision=_HIGHEST)


def sq_norms(rs: Sequence[jax.Array]) -> jax.Array:
  return sum(row_sums(r * r) for r in rs)


def pairwise_sq_distances(rs: Sequence[jax.Array], finite: jax.Array) -> jax.Array:
  """(n, n) squared Euclidean distances by the Gram form; inf between a non-finite row and any other row."""
  safe = zero_nonfinite(rs, finite)
  norms = jnp.where(finite, sq_norms(safe), jnp.inf)
  # Centre at the finite row of median norm (ties: lowest index): removes a shared offset before the Gram form.
  count = jnp.sum(finite)
  centre = jnp.argsort(norms, stable=True)[jnp.maximum(count - 1, 0) // 2]
  centred = [jnp.where(finite[:, None], r - r[centre], 0) for r in safe]
  gram = sum(jnp.matmul(r, r.T, precision=_HIGHEST) for r in centred)
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
    y = jnp.matmul(w, r, precision=_HIGHEST)
    out.append(jnp.where(poisoned[..., None], jnp.nan, y))
  return unrows(out, stacked, lead=tuple(weights.shape[:-1]))


def select_lowest(scores: jax.Array, k: int) -> jax.Array:
  """Indices of the k smallest scores, ties towards the lowest index (``lax.top_k`` keeps index order)."""
  return lax.top_k(-scores, k)[1]


def _row_norms(rs):
  return jnp.sqrt(sq_norms(rs))


# ----------------------------------------------------------------------------------------------------------------
# Coordinate-wise rules.


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


# ----------------------------------------------------------------------------------------------------------------
# Distance-based rules.

KRUM_CONVENTIONS = ('byzfl', 'flower')


def _krum_scores(stacked, f, convention, name):
  n = num_workers(stacked)
  check_f(f, n, name)
  if convention not in KRUM_CONVENTIONS:
    raise ValueError(f'{name}: convention must be one of {KRUM_CONVENTIONS}, got {convention!r}')
  rs = rows(stacked)
  d2 = pairwise_sq_distances(rs, finite_rows(rs))
  k = n - f - 1 if convention == 'byzfl' else max(1, n - f - 2)
  k = max(min(k, n - 1), 1) if n > 1 else 0
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

  ``convention='byzfl'`` (default; ByzFL and the paper): N_i are the n - f - 1 nearest other workers (ByzFL ranks
  by their *mean*, the same order). ``convention='flower'``: the max(1, n - f - 2) nearest (Flower's
  ``aggregate_krum``). Ties: the lowest index (ByzFL's fixture ``[[1,2,3],[4,5,6],[7,8,9]]``, f=1 -> ``[1,2,3]``).
  Non-finite rows have infinite distance to all others, hence an infinite score; they are chosen only if every
  score is infinite.

  Args:
    stacked: pytree of updates with a leading worker axis of size n.
    f: number of faulty workers; 0 <= f < n/2.
    key: unused.
    convention: ``'byzfl'`` or ``'flower'``.

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
  ``convention='flower'`` scores over the max(1, n - f - 2) nearest (Flower's ``aggregate_krum`` with
  ``to_keep = m``); Flower's default m is then whatever the caller passes. Ties: lowest index first.

  Args:
    stacked: pytree of updates with a leading worker axis of size n.
    f: number of faulty workers; 0 <= f < n/2.
    key: unused.
    m: number of updates averaged; default n - f.
    convention: ``'byzfl'`` or ``'flower'``.

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
  if not isinstance(m, (int, np.integer)) or not 1 <= m <= n:
    raise ValueError(f'multi_krum: m must be an integer in [1, n={n}], got {m!r}')
  chosen = select_lowest(scores, m)
  weights = jnp.zeros((n,), scores.dtype).at[chosen].add(1.0 / m)
  return combine(stacked, weights)


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
  if not np.isfinite(nu) or nu <= 0:
    raise ValueError(f'geometric_median: nu must be positive and finite, got {nu!r}')
  if not isinstance(iters, (int, np.integer)) or iters < 0:
    raise ValueError(f'geometric_median: iters must be a non-negative integer, got {iters!r}')
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
    return [jnp.matmul(w, r, precision=_HIGHEST) / jnp.sum(w) for r in safe]

  z = lax.fori_loop(0, iters, step, z)
  return unrows(z, stacked)


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
  chosen = select_lowest(d2, n - f)
  weights = jnp.zeros((n,), d2.dtype).at[chosen].add(1.0 / (n - f))
  return combine(stacked, weights)


def _is_index(pivot) -> bool:
  if isinstance(pivot, (int, np.integer)):
    return True
  return hasattr(pivot, 'dtype') and jnp.ndim(pivot) == 0 and jnp.issubdtype(pivot.dtype, jnp.integer)


# ----------------------------------------------------------------------------------------------------------------
# Stateful: centered clipping.


def centered_clipping(tau: float = 100.0, iters: int = 1) -> StatefulRule:
  r"""Centered clipping (Karimireddy et al. 2021, arXiv 2012.10333), stateful: the centre is the last aggregate.

  .. math:: v_0 = m, \quad v_{l+1} = v_l + \frac{1}{n}\sum_i (x_i - v_l)\min\Big(1, \frac{\tau}{\|x_i - v_l\|}\Big),
     \quad m \leftarrow v_L

  ByzFL's ``CenteredClipping(m=None, L=1, tau=100.)``: the state starts at zero and the division is by n (every
  worker, faulty or not). A non-finite row contributes 0 (its clipped direction is undefined); an input equal to
  the centre contributes 0 (no division by zero). No ties.

  Args:
    tau: clipping radius, > 0.
    iters: number L of clipping iterations per round, >= 1.

  Returns:
    A :class:`decentral.StatefulRule` whose state (the centre) is stored in float32 or wider.

  >>> import jax.numpy as jnp
  >>> cc = centered_clipping(tau=1.0)
  >>> x = jnp.array([[0.5, 0.], [0., 0.5], [100., 0.]])
  >>> agg, state = cc.apply(x, cc.init(x[0]), f=1, key=None)
  >>> jnp.round(agg, 3)
  Array([0.5  , 0.167], dtype=float32)
  """
  if not np.isfinite(tau) or tau <= 0:
    raise ValueError(f'centered_clipping: tau must be positive and finite, got {tau!r}')
  if not isinstance(iters, (int, np.integer)) or iters < 1:
    raise ValueError(f'centered_clipping: iters must be a positive integer, got {iters!r}')

  def init(update):
    return jax.tree.map(lambda x: jnp.zeros(jnp.shape(x), compute_dtype(x)), update)

  def apply(stacked, state, *, f=0, key=None):
    del key
    n = num_workers(stacked)
    check_f(f, n, 'centered_clipping')
    rs = rows(stacked)
    finite = finite_rows(rs)
    safe = zero_nonfinite(rs, finite)
    v = [jnp.reshape(s, (-1,)).astype(r.dtype) for s, r in zip(jax.tree.leaves(state), rs)]
    for _ in range(iters):
      diff = [r - vv for r, vv in zip(safe, v)]
      norm = jnp.sqrt(sq_norms(diff))
      scale = jnp.where(finite, jnp.minimum(1.0, tau / norm), 0.0)
      v = [vv + jnp.matmul(scale, d, precision=_HIGHEST) / n for vv, d in zip(v, diff)]
    out = unrows(v, stacked)
    new_state = jax.tree.map(lambda o, s: o.astype(s.dtype), out, state)
    return out, new_state

  return StatefulRule(init, apply)


# ----------------------------------------------------------------------------------------------------------------
# Seed papers: Flag Aggregator, Multi-metrics, SybilWall-style similarity weighting.


def flag_aggregator(stacked: PyTree, *, f: int = 0, key: jax.Array | None = None, r: int = 1, iters: int = 1,
                    eps: float = 1e-7) -> PyTree:
  r"""Flag Aggregator (Almasi et al. 2023, arXiv 2302.05865): a robust r-dimensional subspace of the normalised
  updates by FlagIRLS, then the projection of the updates onto it.

  With unit vectors :math:`\hat x_i = x_i/\|x_i\|` and the current subspace :math:`Y \in \mathbb R^{d\times r}`
  (orthonormal columns), one IRLS step is

  .. math:: w_i = \big(|1 - \|Y^\top \hat x_i\|^2| + \epsilon\big)^{-1/4}, \qquad
     Y \leftarrow \text{top-}r\text{ left singular vectors of } [w_1\hat x_1, \dots, w_n \hat x_n],

  and the output is :math:`\frac1r \sum_i Y Y^\top \hat x_i`.

  Follows the official code (hamidralmasi/FlagAggregator, ``aggregators/flag.py``, lambda = 0 as in all its run
  scripts): Y starts as the orthonormalised uniform(-1/2, 1/2) random d x r matrix (here from ``key``, shared by
  all workers), ``iters`` FlagIRLS steps (code: 1) that stop early when the sine-median objective
  :math:`\sum_i \sqrt{1 - \|Y^\top\hat x_i\|^2}` stops decreasing by more than 1e-10, and the last iterate is
  kept only if it decreased the objective. As in the code the output is built from the *normalised* updates, so
  its norm is at most n/r whatever the input norms (the paper writes the update as Y*, the code returns this).
  The optional pairwise regulariser (lambda > 0) of the paper is not implemented. ``f`` is unused (the rule
  needs no bound on the number of faulty workers).

  Everything after the first step runs in the n-dimensional coefficient space (Y = X^T B), so the cost is one
  n x n Gram matrix, an n x n eigendecomposition per step and O(n d r) for the random start and the output.
  Non-finite rows get weight 0 and contribute nothing; all-zero rows normalise to zero (as torch's
  ``F.normalize``). No ties (eigenvectors of distinct eigenvalues; a degenerate top eigenspace is split
  arbitrarily by ``eigh``).

  Args:
    stacked: pytree of updates with a leading worker axis of size n.
    f: unused; checked.
    key: PRNG key for the random start (required).
    r: subspace dimension, 1 <= r (code default 1; its scripts use 8).
    iters: number of FlagIRLS iterations, >= 1 (code: 1).
    eps: the weight regulariser.

  Returns:
    One update.

  >>> import jax, jax.numpy as jnp
  >>> x = jnp.array([[1., 0.], [2., 0.1], [3., -0.1], [0., 50.]])
  >>> jnp.round(flag_aggregator(x, key=jax.random.key(0)), 1)  # the three aligned updates win
  Array([3., 0.], dtype=float32)
  """
  n = num_workers(stacked)
  check_f(f, n, 'flag_aggregator', strict_half=False)
  if key is None:
    raise ValueError('flag_aggregator: key is required (random start of the subspace)')
  if not isinstance(r, (int, np.integer)) or r < 1:
    raise ValueError(f'flag_aggregator: r must be a positive integer, got {r!r}')
  if not isinstance(iters, (int, np.integer)) or iters < 1:
    raise ValueError(f'flag_aggregator: iters must be a positive integer, got {iters!r}')
  rs = rows(stacked)
  finite = finite_rows(rs)
  safe = zero_nonfinite(rs, finite)
  norms = jnp.sqrt(sq_norms(safe))
  unit = [x / jnp.maximum(norms, 1e-12)[:, None] for x in safe]
  gram = sum(jnp.matmul(u, u.T, precision=_HIGHEST) for u in unit)
  dtype = gram.dtype

  # Random start: uniform(-1/2, 1/2), orthonormalised through its r x r Gram (same subspace as torch.qr).
  y0 = [jax.random.uniform(jax.random.fold_in(key, i), (u.shape[1], r), dtype) - 0.5 for i, u in enumerate(unit)]
  chol = jnp.linalg.cholesky(sum(jnp.matmul(y.T, y, precision=_HIGHEST) for y in y0))
  y0 = [jax.scipy.linalg.solve_triangular(chol, y.T, lower=True).T for y in y0]
  p0 = sum(jnp.matmul(y.T, u.T, precision=_HIGHEST) for y, u in zip(y0, unit))  # (r, n): Y0^T x_i

  def projections(c, b):  # ||Y^T x_i||^2 for Y = c Y0 + X^T B
    p = c * p0 + jnp.matmul(b.T, gram)
    return jnp.sum(p * p, axis=0)

  def objective(c, b):
    return jnp.sum(jnp.where(finite, jnp.sqrt(jnp.maximum(1.0 - projections(c, b), 0.0)), 0.0))

  def flag_step(c, b):
    w = jnp.where(finite, (jnp.abs(1.0 - projections(c, b)) + eps) ** -0.25, 0.0)
    lam, vec = jnp.linalg.eigh(w[:, None] * gram * w[None, :])
    lam, vec = lam[::-1][:r], vec[:, ::-1][:, :r]
    keep = lam > jnp.finfo(dtype).eps * n * jnp.maximum(lam[0], jnp.finfo(dtype).tiny)
    # Left singular vectors u_k = A v_k / sqrt(lam_k), A = X^T diag(w): Y = X^T (diag(w) V Lambda^{-1/2}).
    return w[:, None] * vec * jnp.where(keep, lax.rsqrt(jnp.where(keep, lam, 1.0)), 0.0)[None, :]

  c, b = jnp.ones((), dtype), jnp.zeros((n, r), dtype)
  err = objective(c, b)
  prev_c, prev_b = c, b
  diff = jnp.ones((), dtype)
  active = err > 1e-10
  for _ in range(iters):
    b_new = flag_step(c, b)
    err_new = objective(0.0, b_new)
    prev_c, prev_b = jnp.where(active, c, prev_c), jnp.where(active, b, prev_b)
    diff = jnp.where(active, err - err_new, diff)
    c, b = jnp.where(active, 0.0, c), jnp.where(active, b_new, b)
    err = jnp.where(active, err_new, err)
    active = active & (diff > 1e-10) & (err > 1e-10)
  c, b = jnp.where(diff > 0, c, prev_c), jnp.where(diff > 0, b, prev_b)

  # Output (1/r) Y Y^T s with s = sum_i x_i: q = Y^T s, then Y q = c Y0 q + X^T (B q).
  q = c * jnp.sum(p0 * finite, axis=1) + jnp.matmul(b.T, jnp.matmul(gram, finite.astype(dtype)))
  coef = jnp.matmul(b, q)
  out = [(c * jnp.matmul(y, q) + jnp.matmul(coef, u, precision=_HIGHEST)) / r for y, u in zip(y0, unit)]
  return unrows(out, stacked)


def multi_metrics(stacked: PyTree, *, f: int = 0, key: jax.Array | None = None, p: float = 0.3) -> PyTree:
  r"""Multi-metrics (Huang et al. 2023, arXiv 2303.06601): score each update by three dissimilarities to all
  others, whiten, and average the fraction p with the lowest scores.

  For each worker i, with sums over the other finite workers j,

  .. math:: t_i = \Big(\sum_j (1 - \cos(x_i, x_j))^2,\; \sum_j \|x_i - x_j\|_1,\;
     \sum_j \big|\|x_i\| - \|x_j\|\big|\Big), \qquad s_i = t_i^\top \Sigma^{-1} t_i,

  :math:`\Sigma` the sample covariance (ddof=1) of the :math:`t_i`; the output is the plain mean of the
  :math:`\lfloor p n\rfloor` updates of lowest score. Follows the official code (siquanhuang/Multi-metrics,
  ``defense.py``): the cosine term is squared, the "Euclidean" term is the difference of norms, and the score is
  :math:`t^\top\Sigma^{-1}t` on uncentred features. We use the pseudo-inverse (equal to the inverse when
  :math:`\Sigma` is invertible, defined when it is not, e.g. identical inputs), treat a zero-norm pair's cosine as
  0, and average uniformly (the code weights by data-set size). ``f`` is unused. Non-finite rows are left out of
  every sum and scored +inf. Ties: lowest index. The Manhattan term costs O(n^2 d) (no Gram form exists for it).

  Args:
    stacked: pytree of updates with a leading worker axis of size n.
    f: unused; checked.
    key: unused.
    p: fraction kept; floor(p n) must be >= 1.

  Returns:
    One update.

  >>> import jax.numpy as jnp
  >>> x = jnp.array([[1., 0.], [1.1, 0.1], [0.9, -0.1], [1., 0.05], [-5., 5.]])
  >>> multi_metrics(x, p=0.4).shape
  (2,)
  """
  del key
  n = num_workers(stacked)
  check_f(f, n, 'multi_metrics', strict_half=False)
  keep = int(p * n)
  if not 0 < p <= 1 or keep < 1:
    raise ValueError(f'multi_metrics: p must be in (0, 1] with floor(p*n) >= 1, got p={p!r} for n={n}')
  rs = rows(stacked)
  finite = finite_rows(rs)
  safe = zero_nonfinite(rs, finite)
  pair = finite[:, None] & finite[None, :] & ~jnp.eye(n, dtype=bool)
  norms = jnp.sqrt(sq_norms(safe))
  gram = sum(jnp.matmul(r, r.T, precision=_HIGHEST) for r in safe)
  denom = norms[:, None] * norms[None, :]
  cos = jnp.where(denom > 0, gram / jnp.where(denom > 0, denom, 1.0), 0.0)
  cos_term = jnp.sum(jnp.where(pair, (1.0 - cos) ** 2, 0.0), axis=1)
  len_term = jnp.sum(jnp.where(pair, jnp.abs(norms[:, None] - norms[None, :]), 0.0), axis=1)

  def manhattan_row(i):
    return sum(row_sums(jnp.abs(r - r[i])) for r in safe)

  manhattan = lax.map(manhattan_row, jnp.arange(n))
  man_term = jnp.sum(jnp.where(pair, manhattan, 0.0), axis=1)
  feats = jnp.stack([cos_term, man_term, len_term], axis=1)
  count = jnp.sum(finite)
  mean = jnp.sum(jnp.where(finite[:, None], feats, 0.0), axis=0) / count
  centred = jnp.where(finite[:, None], feats - mean, 0.0)
  cov = jnp.matmul(centred.T, centred, precision=_HIGHEST) / jnp.maximum(count - 1, 1)
  scores = jnp.einsum('ij,jk,ik->i', feats, jnp.linalg.pinv(cov, hermitian=True), feats)
  scores = jnp.where(finite, scores, jnp.inf)
  chosen = select_lowest(scores, keep)
  weights = jnp.zeros((n,), scores.dtype).at[chosen].add(1.0 / keep)
  return combine(stacked, weights)


def foolsgold_weights(vectors: PyTree, finite: jax.Array | None = None) -> jax.Array:
  r"""FoolsGold weights (Fung et al. 2020, arXiv 1808.04866) from the cosine similarities of the given vectors.

  cs = cos(v_i, v_j) with the diagonal zeroed; pardoning cs_ij *= max_i cs / max_j cs when max_i < max_j;
  alpha_i = clip(1 - max_j cs_ij, 0, 1) / max alpha; alpha = 1 -> 0.99; alpha <- clip(log(alpha/(1-alpha)) + 0.5,
  0, 1). As the FoolsGold code, except that pardoning is skipped when max_j cs <= 0 (the code would divide by it)
  and rows flagged non-finite get weight 0. Returns (n,) weights; all zero when every worker looks like one Sybil.
  """
  rs = rows(vectors)
  n = rs[0].shape[0]
  finite = finite_rows(rs) if finite is None else finite
  safe = zero_nonfinite(rs, finite)
  norms = jnp.sqrt(sq_norms(safe))
  gram = sum(jnp.matmul(r, r.T, precision=_HIGHEST) for r in safe)
  denom = norms[:, None] * norms[None, :]
  cs = jnp.where(denom > 0, gram / jnp.where(denom > 0, denom, 1.0), 0.0)
  valid = finite[:, None] & finite[None, :] & ~jnp.eye(n, dtype=bool)
  cs = jnp.where(valid, cs, jnp.where(jnp.eye(n, dtype=bool), 0.0, -1.0))
  maxcs = jnp.max(cs, axis=1)
  pardon = (maxcs[:, None] < maxcs[None, :]) & (maxcs[None, :] > 0)
  cs = jnp.where(pardon, cs * maxcs[:, None] / jnp.where(maxcs[None, :] > 0, maxcs[None, :], 1.0), cs)
  alpha = jnp.clip(1.0 - jnp.max(cs, axis=1), 0.0, 1.0)
  alpha = jnp.where(finite, alpha, 0.0)
  top = jnp.max(alpha)
  alpha = jnp.where(top > 0, alpha / jnp.where(top > 0, top, 1.0), 0.0)
  alpha = jnp.where(alpha == 1.0, 0.99, alpha)
  logit = jnp.log(alpha / (1.0 - alpha)) + 0.5  # alpha = 0 gives -inf, clipped to weight 0
  return jnp.where(finite, jnp.clip(jnp.where(jnp.isnan(logit), 0.0, logit), 0.0, 1.0), 0.0)


def sybilwall(stacked_init: bool = True) -> StatefulRule:
  r"""A SybilWall-style similarity defence (Werthenbach & Pouwelse 2023, arXiv 2306.15044), stateful.

  Each aggregator keeps the running sum :math:`H_j` of every worker's updates (its history, FoolsGold-style) and
  averages the current updates with FoolsGold weights (:func:`foolsgold_weights`) computed from the cosine
  similarities of the histories, so a group of mutually similar workers (Sybils pushing one direction) is
  down-weighted:

  .. math:: H_j \leftarrow H_j + x_j, \qquad \mathrm{out} = \frac{\sum_j \alpha_j(H)\, x_j}{\sum_j \alpha_j(H)}

  No official code exists (notes §4); this implements the paper's aggregation idea with FoolsGold's weighting as
  in its reference code, and leaves out SybilWall's probabilistic gossip (a communication layer, not a rule).
  Non-finite updates are not added to the history and get weight 0. When every weight is zero (all histories
  alike, e.g. identical inputs) the output is the plain mean of the finite rows. No ties (weights, not a choice).
  The state holds n histories, so :func:`decentral.aggregate` builds it from the gathered updates.

  Args:
    stacked_init: must stay True (the state needs the number of workers).

  Returns:
    A :class:`decentral.StatefulRule` with ``stacked_init=True``.

  >>> import jax.numpy as jnp
  >>> sw = sybilwall()
  >>> x = jnp.array([[1., 0.2], [0.9, -0.3], [0.2, 1.], [-3., -3.], [-3., -3.]])
  >>> agg, _ = sw.apply(x, sw.init(x), f=2, key=None)
  >>> bool(agg[0] > 0 and agg[1] > 0)
  True
  """
  if not stacked_init:
    raise ValueError('sybilwall: stacked_init must be True (the history has one row per worker)')

  def init(stacked):
    return jax.tree.map(lambda x: jnp.zeros(jnp.shape(x), compute_dtype(x)), stacked)

  def apply(stacked, history, *, f=0, key=None):
    del key
    n = num_workers(stacked)
    check_f(f, n, 'sybilwall', strict_half=False)
    rs = rows(stacked)
    finite = finite_rows(rs)
    history = jax.tree.map(
        lambda h, x: h + jnp.where(finite.reshape((n,) + (1,) * (x.ndim - 1)), x, 0).astype(h.dtype),
        history, stacked)
    alpha = foolsgold_weights(history, finite)
    total = jnp.sum(alpha)
    fallback = finite.astype(alpha.dtype) / jnp.sum(finite)
    weights = jnp.where(total > 0, alpha / jnp.where(total > 0, total, 1.0), fallback)
    return combine(stacked, weights), history

  return StatefulRule(init, apply, stacked_init=True)


register_rule('median', median)
register_rule('trimmed_mean', trimmed_mean)
register_rule('krum', krum, convention='byzfl')
register_rule('multi_krum', multi_krum, convention='byzfl')
register_rule('geometric_median', geometric_median, nu=0.1, iters=3, init='zero')
register_rule('nearest_neighbour_average', nearest_neighbour_average)
register_rule('centered_clipping', centered_clipping, stateful=True, tau=100.0, iters=1)
register_rule('flag_aggregator', flag_aggregator, r=1, iters=1)
register_rule('multi_metrics', multi_metrics, p=0.3)
register_rule('sybilwall', sybilwall, stateful=True)

