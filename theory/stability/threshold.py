"""The exact mean-square stability threshold ``eta*(B)`` of linearised SGD and the Rayleigh bounds on it.

``1 / eta*(B) = lambda_max((H (+) H)^{-1/2} K_B (H (+) H)^{-1/2})`` with
``K_B = (1 - p_B) H (x) H + p_B E_i[H_i (x) H_i]`` (Mulayoff & Michaeli, arXiv 2306.07850), computed on the range
of ``H``; every bound is the Rayleigh quotient of this pencil at a test matrix (see :mod:`theory.stability`).
"""

from __future__ import annotations

import math

import numpy as np

from theory.stability.second_moment import as_grads, noise_factor


def _range(grads: np.ndarray, rtol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
  """Eigenvalues of ``H`` on its range and the gradients in that eigenbasis (``H`` becomes diagonal)."""
  h = grads.T @ grads / grads.shape[0]
  lam, vec = np.linalg.eigh(h)
  keep = lam > rtol * max(lam[-1], 0.0)
  if not np.any(keep):
    raise ValueError('H = 0: all per-sample gradients vanish')
  return lam[keep], grads @ vec[:, keep]


def _pencil_top(lam: np.ndarray, g: np.ndarray, p: float) -> float:
  """``lambda_max(diag(c) + V^T V)`` with ``c_ab = (1-p) l_a l_b / (l_a + l_b)``, ``V_i,ab = sqrt(p/n) g_ia g_ib /
  sqrt(l_a + l_b)``: the top of ``(H (+) H)^{-1/2} K_B (H (+) H)^{-1/2}`` in the eigenbasis of ``H``."""
  n = g.shape[0]
  s = lam[:, None] + lam[None, :]
  c = ((1.0 - p) * np.outer(lam, lam) / s).ravel()
  c_max = c.max()
  if p == 0.0:
    return float(c_max)
  v = (np.sqrt(p / n) * np.einsum('ia,ib->iab', g, g) / np.sqrt(s)).reshape(n, -1)
  # Diagonal plus rank n: mu > max(c) is an eigenvalue iff 1 is an eigenvalue of V (mu - C)^{-1} V^T, whose
  # top eigenvalue decreases from +inf (or a finite value) to 0 as mu grows. Bisection on it is exact to
  # rounding and costs n x n eigenvalue problems instead of a d^2 x d^2 one.
  def f(mu):
    return np.linalg.eigvalsh((v / (mu - c)) @ v.T)[-1] - 1.0

  lo = c_max * (1.0 + 1e-15) + 1e-300
  hi = c_max + np.linalg.norm(v, 2) ** 2 * (1.0 + 1e-12) + 1e-300
  if f(lo) <= 0.0:
    return float(c_max)
  for _ in range(200):
    mid = 0.5 * (lo + hi)
    if mid <= lo or mid >= hi:
      break
    lo, hi = (mid, hi) if f(mid) > 0.0 else (lo, mid)
  return float(0.5 * (lo + hi))


def stability_threshold(grads, batch_size: int) -> float:
  """Exact mean-square stability threshold ``eta*(B)`` of linearised SGD (module docstring).

  ``eta*(B) = 1 / lambda_max((H (+) H)^{-1/2} K_B (H (+) H)^{-1/2})``, computed on the range of ``H``: the
  process is mean-square stable iff ``eta <= eta*(B)``. ``eta*(n) = 2 / lambda_max(H)`` (GD).

  Args:
    grads: per-sample gradients ``(n, d)`` (rows ``g_i``; ``H_i = g_i g_i^T``).
    batch_size: ``B``, batches drawn without replacement.

  Returns:
    ``eta*(B)``.

  Example:
    >>> import numpy as np
    >>> g = np.array([[1.0, 0.0], [0.0, 1.0]])   # equal norms, H = I/2, tr(H) = 1
    >>> round(stability_threshold(g, 2), 6), round(stability_threshold(g, 1), 6)   # 2/lambda_max, 2/tr(H)
    (4.0, 2.0)
  """
  g = as_grads(grads)
  p = noise_factor(g.shape[0], batch_size)
  lam, gt = _range(g)
  return 1.0 / _pencil_top(lam, gt, p)


def rayleigh_bounds(grads, batch_size: int) -> dict[str, float]:
  """Upper bounds on ``eta*(B)`` from test matrices of the pencil, and the quantities they involve.

  Args:
    grads: per-sample gradients ``(n, d)``.
    batch_size: ``B``.

  Returns:
    ``{'sharpness': 2/lambda_max, 'wu_ma_e': 2a/((1-p)a^2 + p E(u^T g)^4), 'trace': 2 tr(H)/((1-p)||H||_F^2 +
    p E||g||^4), 'trace_jensen': 2 tr(H)/((1-p)||H||_F^2 + p tr(H)^2), 'two_over_trace': 2/tr(H),
    'lambda_max', 'trace_h', 'frobenius_h', 'p'}``. All but ``two_over_trace`` bound ``eta*(B)`` for every ``B``;
    ``two_over_trace`` does for ``B = 1``.
  """
  g = as_grads(grads)
  p = noise_factor(g.shape[0], batch_size)
  h = g.T @ g / g.shape[0]
  lam, vec = np.linalg.eigh(h)
  a, u = lam[-1], vec[:, -1]
  tr, fro2 = float(np.trace(h)), float(np.sum(h ** 2))
  norms4 = float(np.mean(np.sum(g ** 2, axis=1) ** 2))
  return {
      'sharpness': 2.0 / a, 'wu_ma_e': 2.0 * a / ((1 - p) * a * a + p * float(np.mean((g @ u) ** 4))),
      'trace': 2.0 * tr / ((1 - p) * fro2 + p * norms4), 'trace_jensen': 2.0 * tr / ((1 - p) * fro2 + p * tr * tr),
      'two_over_trace': 2.0 / tr, 'lambda_max': float(a), 'trace_h': tr, 'frobenius_h': math.sqrt(fro2), 'p': p,
  }
