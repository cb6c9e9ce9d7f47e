"""The Flag Aggregator (Almasi et al. 2023, arXiv 2302.05865): a robust subspace of the updates by FlagIRLS.

A rule with the signature of :mod:`decentral.robust.aggregation`; randomised (its start is drawn from ``key``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from decentral import checks
from decentral.stacked import (HIGHEST, check_f, finite_rows, gram_matrix, num_workers, rows, sq_norms, unrows,
                               zero_nonfinite)

PyTree = Any


def flag_aggregator(stacked: PyTree, *, f: int = 0, key: jax.Array | None = None, r: int = 1, iters: int = 1,
                    eps: float = 1e-7, lam: float = 0.0) -> PyTree:
  r"""Flag Aggregator (Almasi et al. 2023, arXiv 2302.05865): a robust r-dimensional subspace of the normalised
  updates by FlagIRLS, then the projection of the updates onto it.

  With unit vectors :math:`\hat x_i = x_i/\|x_i\|` and the current subspace :math:`Y \in \mathbb R^{d\times r}`
  (orthonormal columns), one IRLS step is

  .. math:: w_i = \big(|1 - \|Y^\top \hat x_i\|^2| + \epsilon\big)^{-1/4}, \qquad
     Y \leftarrow \text{top-}r\text{ left singular vectors of } [w_1\hat x_1, \dots, w_n \hat x_n],

  and the output is :math:`\frac1r \sum_i Y Y^\top \hat x_i`.

  With the pairwise regulariser (``lam`` :math:`=\lambda > 0`), the difference vectors
  :math:`d_{ij} = \hat x_i - \hat x_j` (all ordered pairs of distinct workers) join the data with the weights
  of the official ``flag_mean_iteration``,

  .. math:: w_{ij} = \frac{\lambda}{n(n-1)} \big(|1 - \|Y^\top d_{ij}\|^2| + \epsilon\big)^{-1/4}, \qquad
     Y \leftarrow \text{top-}r\text{ left singular vectors of }
     [w_1 \hat x_1, \dots, w_n \hat x_n, \dots, w_{ij} d_{ij}, \dots],

  so the regulariser favours subspaces that preserve the pairwise differences. Each such step is the
  majorise-minimise (IRLS) step of

  .. math:: \sum_i \sqrt{1 - \|Y^\top \hat x_i\|^2}
     + \Big(\frac{\lambda}{n(n-1)}\Big)^2 \sum_{i \ne j} \sqrt{|1 - \|Y^\top d_{ij}\|^2|}

  (the code scales the vectors by :math:`\lambda/(n(n-1))`, so the objective's weight is its square), which is
  the objective whose value decides early stopping and acceptance here; the official code evaluates only the
  first sum there, whatever lambda. A true MM step needs :math:`\|Y^\top d_{ij}\| \le 1` (always true when
  the updates are within 60 degrees of each other); beyond, the code's absolute value is kept. ``lam = 0`` (every
  run script of the code) is the plain flag median below, unchanged.

  Follows the official code (hamidralmasi/FlagAggregator, ``aggregators/flag.py``, lambda = 0 as in all its run
  scripts): Y starts as the orthonormalised uniform(-1/2, 1/2) random d x r matrix (here from ``key``, shared by
  all workers), ``iters`` FlagIRLS steps (code: 1) that stop early when the sine-median objective
  :math:`\sum_i \sqrt{1 - \|Y^\top\hat x_i\|^2}` stops decreasing by more than 1e-10, and the last iterate is
  kept only if it decreased the objective. As in the code the output is built from the *normalised* updates, so
  its norm is at most n/r whatever the input norms (the paper writes the update as Y*, the code returns this).
  ``f`` is unused (the rule needs no bound on the number of faulty workers).

  Everything after the first step runs in the n-dimensional coefficient space (Y = X^T B), so the cost is one
  n x n Gram matrix, an n x n eigendecomposition per step and O(n d r) for the random start and the output
  (with ``lam > 0``, one more n x n eigendecomposition of the Gram matrix, and O(n^2 r) for the pair weights).
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
    lam: the pairwise regulariser's lambda >= 0, a Python number (static; the code's ``lambda_``, 0 in all its
      scripts).

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
  checks.positive_int(r, 'flag_aggregator: r')
  checks.positive_int(iters, 'flag_aggregator: iters')
  if not lam >= 0:
    raise ValueError(f'flag_aggregator: lam must be >= 0, got {lam!r}')
  rs = rows(stacked)
  finite = finite_rows(rs)
  safe = zero_nonfinite(rs, finite)
  norms = jnp.sqrt(sq_norms(safe))
  unit = [x / jnp.maximum(norms, 1e-12)[:, None] for x in safe]
  gram = gram_matrix(unit)
  dtype = gram.dtype

  # Random start: uniform(-1/2, 1/2), orthonormalised through its r x r Gram (same subspace as torch.qr).
  y0 = [jax.random.uniform(jax.random.fold_in(key, i), (u.shape[1], r), dtype) - 0.5 for i, u in enumerate(unit)]
  chol = jnp.linalg.cholesky(sum(jnp.matmul(y.T, y, precision=HIGHEST) for y in y0))
  y0 = [jax.scipy.linalg.solve_triangular(chol, y.T, lower=True).T for y in y0]
  p0 = sum(jnp.matmul(y.T, u.T, precision=HIGHEST) for y, u in zip(y0, unit))  # (r, n): Y0^T x_i

  pair = finite[:, None] & finite[None, :] & ~jnp.eye(n, dtype=bool)
  scale = lam / (n * (n - 1)) if n > 1 else 0.0

  def coordinates(c, b):  # Y^T x_i, (r, n), for Y = c Y0 + X^T B
    return c * p0 + jnp.matmul(b.T, gram)

  def projections(c, b):  # ||Y^T x_i||^2
    p = coordinates(c, b)
    return jnp.sum(p * p, axis=0)

  def pair_residuals(c, b):  # |1 - ||Y^T (x_i - x_j)||^2|
    p = coordinates(c, b)
    return jnp.abs(1.0 - jnp.sum((p[:, :, None] - p[:, None, :]) ** 2, axis=0))

  def objective(c, b):
    data = jnp.sum(jnp.where(finite, jnp.sqrt(jnp.maximum(1.0 - projections(c, b), 0.0)), 0.0))
    if not lam:
      return data
    return data + scale ** 2 * jnp.sum(jnp.where(pair, jnp.sqrt(pair_residuals(c, b)), 0.0))

  if lam:  # the Gram matrix's square root, for the flag mean of data and differences in coefficient space
    k_val, k_vec = jnp.linalg.eigh(gram)
    k_keep = k_val > jnp.finfo(dtype).eps * n * jnp.maximum(k_val[-1], jnp.finfo(dtype).tiny)
    k_root = jnp.where(k_keep, jnp.sqrt(jnp.where(k_keep, k_val, 1.0)), 0.0)
    k_inv_root = jnp.where(k_keep, 1.0 / jnp.where(k_keep, k_root, 1.0), 0.0)

  def regularised_step(c, b):
    # The data matrix is X^T C for a coefficient matrix C; the flag mean needs only M = C C^T (n x n):
    # diag(w^2) for the data and, for the differences e_i - e_j of both orders, twice the Laplacian of w_ij^2.
    w2 = jnp.where(finite, (jnp.abs(1.0 - projections(c, b)) + eps) ** -0.5, 0.0)
    a2 = jnp.where(pair, scale ** 2 * (pair_residuals(c, b) + eps) ** -0.5, 0.0)
    m = jnp.diag(w2 + 2.0 * jnp.sum(a2, axis=1)) - 2.0 * a2
    # X^T M X = Z S Q^T M Q S Z^T with K = Q S^2 Q^T and Z = X^T Q S^{-1} orthonormal: eigenvectors Z e.
    t = k_root[:, None] * jnp.matmul(k_vec.T, jnp.matmul(m, k_vec)) * k_root[None, :]
    _, vec = jnp.linalg.eigh(t)
    return jnp.matmul(k_vec, k_inv_root[:, None] * vec[:, ::-1][:, :r])

  def flag_step(c, b):
    if lam:
      return regularised_step(c, b)
    w = jnp.where(finite, (jnp.abs(1.0 - projections(c, b)) + eps) ** -0.25, 0.0)
    evals, vec = jnp.linalg.eigh(w[:, None] * gram * w[None, :])
    evals, vec = evals[::-1][:r], vec[:, ::-1][:, :r]
    keep = evals > jnp.finfo(dtype).eps * n * jnp.maximum(evals[0], jnp.finfo(dtype).tiny)
    # Left singular vectors u_k = A v_k / sqrt(lam_k), A = X^T diag(w): Y = X^T (diag(w) V Lambda^{-1/2}).
    return w[:, None] * vec * jnp.where(keep, lax.rsqrt(jnp.where(keep, evals, 1.0)), 0.0)[None, :]

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
  out = [(c * jnp.matmul(y, q) + jnp.matmul(coef, u, precision=HIGHEST)) / r for y, u in zip(y0, unit)]
  return unrows(out, stacked)
