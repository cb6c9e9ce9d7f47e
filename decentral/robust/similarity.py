"""Similarity-based defences: Multi-metrics (Huang et al. 2023) and the SybilWall-style FoolsGold weighting.

:func:`multi_metrics` scores each update by its dissimilarity to all others and averages the most typical ones;
:func:`sybilwall` (stateful) down-weights workers whose update histories are alike (Sybils pushing one
direction) with FoolsGold's weights (:func:`foolsgold_weights`). Non-finite rows are left out and get weight 0.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from decentral.robust.aggregation import StatefulRule
from decentral.stacked import (HIGHEST, check_f, combine, compute_dtype, cosine_similarities, finite_rows, num_workers,
                               row_sums, rows, select_lowest, sq_norms, uniform_over, zero_nonfinite)

PyTree = Any


def multi_metrics(stacked: PyTree, *, f: int = 0, key: jax.Array | None = None, p: float = 0.3,
                  num_samples: Any = None) -> PyTree:
  r"""Multi-metrics (Huang et al. 2023, arXiv 2303.06601): score each update by three dissimilarities to all
  others, whiten, and average the fraction p with the lowest scores.

  For each worker i, with sums over the other finite workers j,

  .. math:: t_i = \Big(\sum_j (1 - \cos(x_i, x_j))^2,\; \sum_j \|x_i - x_j\|_1,\;
     \sum_j \big|\|x_i\| - \|x_j\|\big|\Big), \qquad s_i = t_i^\top \Sigma^{-1} t_i,

  :math:`\Sigma` the sample covariance (ddof=1) of the :math:`t_i`; the output is the average of the set
  :math:`K` of the :math:`\lfloor p n\rfloor` updates of lowest score, weighted by the clients' data-set sizes
  :math:`n_i` as in the official defence, :math:`\sum_{i\in K} n_i x_i / \sum_{i\in K} n_i`, or uniform when
  ``num_samples`` is None. Follows the official code (siquanhuang/Multi-metrics,
  ``defense.py``): the cosine term is squared, the "Euclidean" term is the difference of norms, and the score is
  :math:`t^\top\Sigma^{-1}t` on uncentred features. We use the pseudo-inverse (equal to the inverse when
  :math:`\Sigma` is invertible, defined when it is not, e.g. identical inputs), treat a zero-norm pair's cosine as
  0, and take the sizes as an argument (the code's ``num_dps``). ``f`` is unused. Non-finite rows are left out of
  every sum and scored +inf. Ties: lowest index. The Manhattan term costs O(n^2 d) (no Gram form exists for it).

  Args:
    stacked: pytree of updates with a leading worker axis of size n.
    f: unused; checked.
    key: unused.
    p: fraction kept; floor(p n) must be >= 1.
    num_samples: ``(n,)`` data-set sizes of the workers (the official code's ``num_dps``), positive; ``None``
      averages the kept updates uniformly (equal sizes). Under :func:`decentral.aggregate` bind them with
      ``functools.partial(multi_metrics, num_samples=sizes)``.

  Returns:
    One update.

  >>> import jax.numpy as jnp
  >>> x = jnp.array([[1., 0.], [1.1, 0.1], [0.9, -0.1], [1., 0.05], [-5., 5.]])
  >>> multi_metrics(x, p=0.4).shape
  (2,)
  >>> multi_metrics(x, p=0.4, num_samples=jnp.array([1., 3., 1., 1., 1.])).shape
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
  cos = cosine_similarities(safe)
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
  cov = jnp.matmul(centred.T, centred, precision=HIGHEST) / jnp.maximum(count - 1, 1)
  scores = jnp.einsum('ij,jk,ik->i', feats, jnp.linalg.pinv(cov, hermitian=True), feats)
  scores = jnp.where(finite, scores, jnp.inf)
  kept = select_lowest(scores, keep)
  if num_samples is None:
    return combine(stacked, uniform_over(kept, n, scores.dtype))
  sizes = jnp.asarray(num_samples, scores.dtype)
  if sizes.shape != (n,):
    raise ValueError(f'multi_metrics: num_samples must have shape ({n},) (one size per worker), got {sizes.shape}')
  weights = jnp.zeros((n,), scores.dtype).at[kept].set(sizes[kept])
  return combine(stacked, weights / jnp.sum(weights))


def foolsgold_weights(vectors: PyTree, finite: jax.Array | None = None) -> jax.Array:
  r"""FoolsGold weights (Fung et al. 2020, arXiv 1808.04866) from the cosine similarities of the given vectors.

  cs = cos(v_i, v_j) with the diagonal zeroed; pardoning ``cs_ij *= max_i cs / max_j cs`` when max_i < max_j;
  alpha_i = clip(1 - max_j cs_ij, 0, 1) / max alpha; alpha = 1 -> 0.99; alpha <- clip(log(alpha/(1-alpha)) + 0.5,
  0, 1). As the FoolsGold code, except that pardoning is skipped when max_j cs <= 0 (the code would divide by it)
  and rows flagged non-finite get weight 0. Returns (n,) weights; all zero when every worker looks like one Sybil.
  """
  rs = rows(vectors)
  n = rs[0].shape[0]
  finite = finite_rows(rs) if finite is None else finite
  cs = cosine_similarities(zero_nonfinite(rs, finite))
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
  in its reference code, over the workers whose updates it receives. SybilWall's network part, probabilistic
  gossip of non-neighbours' updates so that similarity is judged over the whole network while only neighbours are
  mixed, is :mod:`decentral.p2p.sybil_gossip` (the same weights, from histories of every node a peer has heard of).
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
