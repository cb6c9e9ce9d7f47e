"""Contraction in the metric ``M(w)``: the true margin and Lipschitz constant, certified and exact step sizes of
Euler and RK4, and simulated contraction of a linear game."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.linalg import block_diag

from theory.sgn.linalg import sqrt_pair, sym


RK4_C4 = 2.5  # the official code's RK4 guideline constant (LQ_GAMES/config.py, WeightSearchConfig.rk4_c4)
RK4_REAL_AXIS = 2.785293563405282  # RK4's stability interval on the negative real axis, |1 + z + ... + z^4/24| = 1


def metric(w, sizes: Sequence[int], fisher_blocks: Sequence[np.ndarray] | None = None) -> np.ndarray:
  """``M(w) = diag(w_i I_{d_i})``, or ``diag(w_i F_i)`` with Fisher blocks (mirror / natural geometry)."""
  blocks = fisher_blocks if fisher_blocks is not None else [np.eye(int(s)) for s in sizes]
  return block_diag(*[wi * np.asarray(b, np.float64) for wi, b in zip(w, blocks)])


def metric_constants(jacobian: np.ndarray, m: np.ndarray, preconditioner: np.ndarray | None = None
                     ) -> tuple[float, float]:
  """``(alpha_true, beta)`` of the field ``-J x`` (or ``-P^{-1} J x`` with a preconditioner) in ``||.||_M``.

  ``alpha_true = lambda_min(M^{-1/2} sym(M A) M^{-1/2})`` and ``beta = ||M^{1/2} A M^{-1/2}||_2`` with
  ``A = J`` (or ``P^{-1} J``; for natural gradient ``P = diag(F_i)``, the Fisher without weights).
  """
  a = np.asarray(jacobian, np.float64)
  if preconditioner is not None:
    a = np.linalg.solve(preconditioner, a)
  half, inv_half = sqrt_pair(m)
  scaled = half @ a @ inv_half
  return float(np.linalg.eigvalsh(sym(scaled))[0]), float(np.linalg.norm(scaled, 2))


def euclidean_margin(jacobian: np.ndarray) -> float:
  """``gamma_Euc = lambda_min(sym J)``: Euclidean strong monotonicity (Rosen 1965) iff positive."""
  return float(np.linalg.eigvalsh(sym(np.asarray(jacobian, np.float64)))[0])


def euler_step_bound(alpha: float, beta: float) -> float:
  """``2 alpha / beta^2`` (0 when ``alpha <= 0``): projected Euler contracts in ``||.||_M`` below it."""
  return 2 * alpha / beta ** 2 if alpha > 0 else 0.0


def euler_factor(h, alpha: float, beta: float):
  """The certified per-step factor ``sqrt(1 - 2 h alpha + h^2 beta^2)`` of projected Euler."""
  return np.sqrt(np.maximum(1 - 2 * np.asarray(h) * alpha + np.asarray(h) ** 2 * beta ** 2, 0.0))


def rk4_step_guideline(beta: float, alpha: float = 1.0, c4: float = RK4_C4) -> float:
  """The official code's RK4 guideline ``h <= C_4 / beta`` (0 when ``alpha <= 0``)."""
  return c4 / beta if alpha > 0 else 0.0


def step_matrix(jacobian: np.ndarray, h: float, method: str = 'euler') -> np.ndarray:
  """One step of Euler (``I - hJ``) or RK4 (``sum_{k<=4} (-hJ)^k / k!``) on ``x' = -J x``."""
  a = -h * np.asarray(jacobian, np.float64)
  eye = np.eye(a.shape[0])
  if method == 'euler':
    return eye + a
  if method == 'rk4':
    return eye + a @ (eye + a @ (eye / 2 + a @ (eye / 6 + a / 24)))
  raise ValueError(f"method must be 'euler' or 'rk4', got {method!r}")


def spectral_radius(t: np.ndarray) -> float:
  """``max_k |lambda_k(T)|`` of a step matrix ``T``."""
  return float(np.max(np.abs(np.linalg.eigvals(t))))


def stability_threshold(jacobian: np.ndarray, method: str = 'euler', h_max: float | None = None) -> float:
  """The largest ``h`` with ``rho(step_matrix(J, h)) < 1`` from 0 (bisection after a scan); 0 if none.

  For Euler it is exact: ``min_k 2 Re(lambda_k) / |lambda_k|^2`` over the eigenvalues of ``J``.
  """
  lam = np.linalg.eigvals(np.asarray(jacobian, np.float64))
  if np.any(lam.real <= 0):
    return 0.0
  if method == 'euler':
    return float(np.min(2 * lam.real / np.abs(lam) ** 2))
  # RK4: stable iff |P(-h lambda)| < 1 for every eigenvalue; scan, then bisect the first crossing.
  poly = lambda z: 1 + z + z ** 2 / 2 + z ** 3 / 6 + z ** 4 / 24
  rho = lambda h: np.max(np.abs(poly(-h * lam)))
  h_max = h_max or 4.0 / np.max(np.abs(lam))
  grid = np.linspace(0, h_max, 801)[1:]
  bad = np.nonzero([rho(h) >= 1 for h in grid])[0]
  if bad.size == 0:
    return float(h_max)
  lo, hi = (grid[bad[0] - 1] if bad[0] > 0 else 0.0), grid[bad[0]]
  for _ in range(60):
    mid = 0.5 * (lo + hi)
    lo, hi = (mid, hi) if rho(mid) < 1 else (lo, mid)
  return float(lo)


def simulate_contraction(jacobian: np.ndarray, m: np.ndarray, h: float, method: str = 'euler',
                         steps: int = 200, num_pairs: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
  """Runs the linear game from random pairs ``x, y``; returns per-step ``||x - y||_M`` ratios.

  For a linear field the difference evolves by the step matrix itself, so ``e_{t+1} = T e_t``.

  Returns:
    ``{'ratios': (num_pairs, steps)`` one-step ratios ``||e_{t+1}||_M / ||e_t||_M``, ``'max_ratio'``,
    ``'rate'`` (the geometric-mean factor over the run, median over pairs)}.
  """
  t = step_matrix(jacobian, h, method)
  half, _ = sqrt_pair(m)
  e = np.random.default_rng(seed).normal(size=(t.shape[0], num_pairs))
  e /= np.linalg.norm(half @ e, axis=0)
  ratios = np.empty((steps, num_pairs))
  for k in range(steps):
    e = t @ e
    ratios[k] = np.linalg.norm(half @ e, axis=0)
    e /= np.where(ratios[k] > 0, ratios[k], 1.0)  # renormalise: ratios are scale-free, unstable runs stay finite
  return {'ratios': ratios.T, 'max_ratio': float(ratios.max()),
          'rate': float(np.median(np.exp(np.mean(np.log(np.maximum(ratios, 1e-300)), axis=0))))}
