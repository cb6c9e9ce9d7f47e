"""Pre-aggregations: maps from n stacked updates to n' stacked updates, composed with any aggregation rule.

A pre-aggregation has the signature ``pre(stacked, *, f, key) -> stacked'`` (leading axis n'). Composing it with a
rule gives a rule (or a :class:`decentral.StatefulRule` when the rule is stateful), so it goes wherever a rule
goes::

    decentral.aggregate(decentral.nnm_then(decentral.trimmed_mean), axis_name='workers', f=3)

Tie-breaking and non-finite rows follow :mod:`decentral.stacked`: ties go to the lowest index; a row with a NaN or
inf is at infinite distance from the others and has infinite norm.

>>> import jax.numpy as jnp
>>> x = jnp.array([[1., 2., 3.], [4., 5., 6.], [7., 8., 9.]])
>>> nnm(x, f=1)  # ByzFL's NNM(1) fixture
Array([[2.5, 3.5, 4.5],
       [2.5, 3.5, 4.5],
       [5.5, 6.5, 7.5]], dtype=float32)
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from decentral import checks
from decentral import stacked as st
from decentral.robust import passes
from decentral.robust.aggregation import StatefulRule

PyTree = Any
PreAggregation = Callable[..., PyTree]


def nnm(stacked: PyTree, *, f: int = 0, key: jax.Array | None = None) -> PyTree:
  r"""Nearest-neighbour mixing (Allouah et al. 2023, arXiv 2302.01772): each update becomes the mean of its n - f
  nearest neighbours, itself included.

  .. math:: y_i = \frac{1}{n-f}\sum_{j \in N_i} x_j, \quad N_i = \text{the } n-f \text{ nearest to } x_i

  ByzFL's ``NNM(f)``. Distances by the Gram form (one pass over the stack, O(n^2 d)), the mixing by one (n x n) @
  (n x d) product (:func:`decentral.robust.passes.mix`). Ties: lowest index (ByzFL fixture above). A non-finite row
  is at infinite distance from the others, so it never enters a finite row's neighbourhood while n - f rows are
  finite; its own output is NaN.

  Args:
    stacked: pytree of updates with a leading worker axis of size n.
    f: number of faulty workers; 0 <= f < n/2.
    key: unused.

  Returns:
    The mixed updates, with the structure of ``stacked`` (n rows).
  """
  del key
  n = st.num_workers(stacked)
  st.check_f(f, n, 'nnm')
  rs = st.rows(stacked)
  stats = passes.gram_stats(rs)
  d2 = passes.sq_distances(stats)
  nearest = jax.lax.top_k(-d2, n - f)[1]  # (n, n - f), ties towards the lowest index
  mixing = jnp.zeros((n, n), d2.dtype).at[jnp.arange(n)[:, None], nearest].add(1.0 / (n - f))
  return st.unrows([passes.mix(r, mixing, stats.finite) for r in rs], stacked, lead=(n,))


def bucketing(stacked: PyTree, *, f: int = 0, key: jax.Array | None = None, s: int = 2) -> PyTree:
  r"""Bucketing (Karimireddy et al. 2022, arXiv 2006.09365): shuffle, then average buckets of s updates.

  .. math:: y_b = \frac{1}{|B_b|}\sum_{i \in B_b} x_{\pi(i)}, \quad B_b = \{bs, \dots, \min((b+1)s, n) - 1\}

  ByzFL's ``Bucketing(s)``: ceil(n/s) buckets, the last one smaller when s does not divide n; the permutation is
  drawn from ``key``, which :func:`decentral.aggregate` shares between workers, so every worker builds the same
  buckets. At most f buckets contain a faulty update, so the base rule is called with the same f and needs
  2f < ceil(n/s). A bucket holding a non-finite row is NaN. No ties.

  Args:
    stacked: pytree of updates with a leading worker axis of size n.
    f: number of faulty workers; checked against the number of buckets.
    key: PRNG key for the permutation (required).
    s: bucket size, >= 1.

  Returns:
    ceil(n/s) bucket means, with the structure of ``stacked``.
  """
  n = st.num_workers(stacked)
  checks.positive_int(s, 'bucketing: s')
  buckets = -(-n // s)
  st.check_f(f, n, 'bucketing', strict_half=False)
  if f and 2 * f >= buckets:
    raise ValueError(f'bucketing: s={s} leaves {buckets} buckets of n={n} updates, too few for f={f} '
                     '(need 2f < ceil(n/s))')
  if key is None:
    raise ValueError('bucketing: key is required (the shared random permutation)')
  perm = jax.random.permutation(key, n)
  position = jnp.arange(n)
  bucket = position // s
  sizes = jnp.minimum(s, n - s * jnp.arange(buckets))
  dtype = st.compute_dtype(jax.tree.leaves(stacked)[0])
  mixing = jnp.zeros((buckets, n), dtype).at[bucket, perm].set(1.0 / sizes[bucket].astype(dtype))
  return st.combine(stacked, mixing)


def arc(stacked: PyTree, *, f: int = 0, key: jax.Array | None = None) -> PyTree:
  r"""Adaptive robust clipping, ARC (Allouah et al. 2024, arXiv 2405.14432): clip the k largest updates to the
  norm of the largest one left unclipped, k = floor(2f (n - f) / n).

  .. math:: y_i = x_i \min\big(1, \|x_{\sigma(n-k)}\| / \|x_i\|\big), \quad \sigma \text{ sorts the norms}

  ByzFL's ``ARC(f)``, with k in exact integer arithmetic (ByzFL computes ``int(2f/n * (n-f))`` in floating point,
  which differs only at n=242, f=33 for n < 300). Ties in norm: the lower index counts as smaller (stable sort).
  A non-finite row has infinite norm, is always among the k clipped ones when there are at most f of them
  (k >= f for f <= n/2), and becomes the zero vector (its direction is undefined).

  Args:
    stacked: pytree of updates with a leading worker axis of size n.
    f: number of faulty workers; 0 <= f < n/2.
    key: unused.

  Returns:
    The clipped updates (n rows).
  """
  del key
  n = st.num_workers(stacked)
  st.check_f(f, n, 'arc')
  k = (2 * f * (n - f)) // n
  if k == 0:
    return jax.tree.map(lambda x: x.astype(st.compute_dtype(x)), stacked)
  rs = st.rows(stacked)
  finite = st.finite_rows(rs)
  norms = jnp.where(finite, jnp.sqrt(st.sq_norms(st.zero_nonfinite(rs, finite))), jnp.inf)
  order = jnp.argsort(norms, stable=True)
  threshold = norms[order[n - k - 1]]
  clipped = jnp.zeros((n,), bool).at[order[n - k:]].set(True)
  scale = jnp.where(clipped, jnp.where(finite, jnp.minimum(1.0, threshold / jnp.where(norms > 0, norms, 1.0)),
                                       0.0), 1.0)
  return st.combine(stacked, jnp.diag(scale))


def clipping(stacked: PyTree, *, f: int = 0, key: jax.Array | None = None, c: float = 2.0) -> PyTree:
  r"""Static clipping (ByzFL's ``Clipping(c)``): every update scaled to norm at most c.

  That is, :math:`y_i = x_i \min(1, c/\|x_i\|)`.

  A non-finite row becomes the zero vector. No ties.

  Args:
    stacked: pytree of updates with a leading worker axis of size n.
    f: unused.
    key: unused.
    c: the clipping radius, >= 0.

  Returns:
    The clipped updates (n rows).
  """
  del f, key
  if not np.isfinite(c) or c < 0:
    raise ValueError(f'clipping: c must be non-negative and finite, got {c!r}')
  rs = st.rows(stacked)
  finite = st.finite_rows(rs)
  norms = jnp.sqrt(st.sq_norms(st.zero_nonfinite(rs, finite)))
  scale = jnp.where(finite, jnp.minimum(1.0, c / jnp.where(norms > 0, norms, 1.0)), 0.0)
  return st.combine(stacked, jnp.diag(scale))


def preaggregated(rule, *pres: PreAggregation):
  """The rule applied after the pre-aggregations ``pres`` (in order): ``rule(pres[-1](...pres[0](x)))``.

  Every stage gets the same f and its own key (``fold_in(key, stage)``; None stays None). Works for a stateful
  rule too (returns a :class:`decentral.StatefulRule`).

  Args:
    rule: an aggregation rule or a :class:`decentral.StatefulRule`.
    *pres: pre-aggregations ``pre(stacked, *, f, key) -> stacked'``.

  Returns:
    A rule of the same kind.

  >>> import jax.numpy as jnp
  >>> from decentral.robust.order_statistics import trimmed_mean
  >>> tm = preaggregated(trimmed_mean, nnm)
  >>> tm(jnp.array([[1.], [2.], [3.], [1e6]]), f=1)
  Array([2.], dtype=float32)
  """
  if not pres:
    return rule

  def fold(key, i):
    return None if key is None else jax.random.fold_in(key, i)

  def pre_apply(stacked, f, key):
    for i, pre in enumerate(pres):
      stacked = pre(stacked, f=f, key=fold(key, i + 1))
    return stacked

  if isinstance(rule, StatefulRule):
    if rule.stacked_init:
      raise ValueError('preaggregated: a rule whose state has one row per worker cannot follow a '
                       'pre-aggregation that changes the rows')

    def apply(stacked, state, *, f=0, key=None):
      return rule.apply(pre_apply(stacked, f, key), state, f=f, key=fold(key, 0))

    return StatefulRule(rule.init, apply)

  @functools.wraps(rule)
  def composed(stacked, *, f=0, key=None):
    return rule(pre_apply(stacked, f, key), f=f, key=fold(key, 0))

  return composed


def nnm_then(rule):
  """``rule`` after nearest-neighbour mixing: ``preaggregated(rule, nnm)``."""
  return preaggregated(rule, nnm)


def bucketing_then(rule, s: int = 2):
  """``rule`` after bucketing with bucket size ``s``."""
  return preaggregated(rule, functools.partial(bucketing, s=s))


def arc_then(rule):
  """``rule`` after adaptive robust clipping."""
  return preaggregated(rule, arc)
