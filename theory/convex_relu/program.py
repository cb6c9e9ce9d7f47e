"""The convex program of two-layer ReLU training, its link to the network, and a duality-gap certificate.

Non-convex problem (``m`` hidden ReLU units, squared loss, weight decay):

    min_{u_j, alpha_j}  (1/2) || sum_j (X u_j)_+ alpha_j - y ||^2 + (beta/2) sum_j (||u_j||^2 + alpha_j^2).

Convex program over patterns ``D_i`` (Pilanci & Ergen, arXiv 2002.10553; over sampled patterns, the "practical"
formulation of Bai, Gautam & Sojoudi, arXiv 2201.01965):

    min_{v_i, w_i}  (1/2) || sum_i D_i X (v_i - w_i) - y ||^2 + beta sum_i (||v_i||_2 + ||w_i||_2)
    s.t.  (2 D_i - I) X v_i >= 0,   (2 D_i - I) X w_i >= 0.

With every pattern, and ``m >= m*`` (the number of nonzero blocks), both optima are equal; a network comes back by
``u = v_i / sqrt(||v_i||), alpha = sqrt(||v_i||)`` and ``u = w_i / sqrt(||w_i||), alpha = -sqrt(||w_i||)``
(:func:`recover_network`). With sampled patterns the convex optimum is an upper bound of the global one.

**Certificate** (:func:`dual_certificate`). The Lagrange dual is ``max_z  z^T y - ||z||^2 / 2`` subject to, for
every pattern, ``min_{mu >= 0} || X^T D_i z + X^T (2 D_i - I) mu || <= beta`` and the same with ``-z``. Given any
``z`` (the residual ``y - yhat`` of a candidate), each constraint's left side is a non-negative least squares
problem (``scipy.optimize.nnls``), homogeneous in ``z``; scaling ``z`` into the feasible set gives a dual value
``<= p*``. Checked against *every* pattern (:func:`enumerate_patterns_2d`), it lower-bounds the non-convex
problem at any width, so ``objective(network) - dual`` certifies the network's global optimality.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize


def convex_predict(x: np.ndarray, patterns: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
  """``sum_i D_i X (v_i - w_i)``; ``v, w`` are ``(P, d)``."""
  return np.sum(patterns * (x @ (v - w).T), axis=1)


def convex_objective(x, y, patterns, v, w, beta: float) -> float:
  """``(1/2) ||sum_i D_i X (v_i - w_i) - y||^2 + beta sum_i (||v_i|| + ||w_i||)``."""
  r = convex_predict(x, patterns, v, w) - y
  return float(0.5 * r @ r + beta * (np.linalg.norm(v, axis=1).sum() + np.linalg.norm(w, axis=1).sum()))


def cone_violation(x, patterns, v, w) -> float:
  """``max(0, -min (2 D_i - I) X v_i, -min (2 D_i - I) X w_i)``: how far the cone constraints fail."""
  signs = 2 * patterns - 1
  return float(max(0.0, -np.min(signs * (x @ v.T)), -np.min(signs * (x @ w.T))))


def recover_network(v: np.ndarray, w: np.ndarray, tol: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
  """The ReLU network of a convex solution: ``(U (m, d), alpha (m,))`` from the blocks with norm above ``tol``.

  Example:
    >>> u, a = recover_network(np.array([[3.0, 4.0]]), np.zeros((1, 2)))
    >>> u.tolist(), a.tolist()
    ([[1.3416407864998738, 1.7888543819998317]], [2.23606797749979])
  """
  out_u, out_a = [], []
  for blocks, sign in ((v, 1.0), (w, -1.0)):
    norms = np.linalg.norm(blocks, axis=1)
    for b, r in zip(blocks, norms):
      if r > tol:
        out_u.append(b / np.sqrt(r))
        out_a.append(sign * np.sqrt(r))
  d = v.shape[1]
  return np.asarray(out_u).reshape(-1, d), np.asarray(out_a)


def relu_network(x: np.ndarray, u: np.ndarray, alpha: np.ndarray) -> np.ndarray:
  """``sum_j (x u_j)_+ alpha_j``."""
  return np.maximum(x @ u.T, 0.0) @ alpha


def nonconvex_objective(x, y, u, alpha, beta: float) -> float:
  """``(1/2) ||sum_j (X u_j)_+ alpha_j - y||^2 + (beta/2) (||U||_F^2 + ||alpha||^2)``."""
  r = relu_network(x, u, alpha) - y
  return float(0.5 * r @ r + 0.5 * beta * (np.sum(u ** 2) + np.sum(alpha ** 2)))


def _constraint_norms(x, patterns, z):
  # For each pattern and sign: min_{mu >= 0} || s X^T D_i z + X^T (2 D_i - I) mu ||.
  out = np.zeros((patterns.shape[1], 2))
  for i in range(patterns.shape[1]):
    a = x.T * (2 * patterns[:, i] - 1)      # X^T (2 D_i - I), shape (d, n)
    g = x.T @ (patterns[:, i] * z)          # X^T D_i z
    for k, s in enumerate((1.0, -1.0)):
      out[i, k] = scipy.optimize.nnls(a, -s * g)[1]
  return out


def dual_certificate(x, y, patterns, z, beta: float) -> dict:
  """A dual-feasible point along ``z`` and its value, a lower bound of the convex program over ``patterns``.

  Args:
    x: inputs ``(n, d)`` (with the bias column if any).
    y: targets ``(n,)``.
    patterns: ``(n, P)`` 0/1 patterns; pass every pattern for a global lower bound.
    z: a dual direction, e.g. the residual ``y - yhat`` of a candidate solution.
    beta: the regularisation.

  Returns:
    ``{'dual_value', 'scale', 'max_constraint'}``: the dual point is ``scale * z``; ``max_constraint`` is the
    largest constraint norm at ``z`` (``scale <= beta / max_constraint``).
  """
  c = float(_constraint_norms(x, patterns, z).max())
  t_max = beta / c if c > 0 else np.inf
  zz, zy = float(z @ z), float(z @ y)
  t = min(t_max, max(zy, 0.0) / zz) if zz > 0 else 0.0
  return {'dual_value': t * zy - 0.5 * t * t * zz, 'scale': t, 'max_constraint': c}
