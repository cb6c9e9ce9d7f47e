"""The paper's linear-quadratic games: the 2-D mini-toy and the 64-dimensional LQ game across coupling strengths
(margins, timescale band, phase diagrams, random games)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from scipy.linalg import expm

from theory.sgn.bounds import block_bounds, optimal_weights, sgn_margin, two_player_band, two_player_margin
from theory.sgn.contraction import (euclidean_margin, euler_factor, euler_step_bound, metric, metric_constants,
                                    rk4_step_guideline, simulate_contraction, spectral_radius, stability_threshold,
                                    step_matrix)


def mini_toy(mu1: float = 1.0, mu2: float = 1.0, a: float = 10.0, b: float = 0.05,
             w: Sequence[float] = (1.0, 200.0)) -> dict[str, Any]:
  """The 2-D game ``f_1 = mu_1 x_1^2 / 2 + a x_1 x_2``, ``f_2 = mu_2 x_2^2 / 2 + b x_1 x_2`` (paper Sec. 5.1).

  ``J = [[mu_1, a], [b, mu_2]]``; with the paper's values the Euclidean margin is ``1 - (a + b)/2 = -4.025``
  and at ``w = (1, 200)`` the SGN margin is ``1 - sqrt(ab) = 0.2929`` (``M^{1/2} J M^{-1/2}`` is symmetric).

  Returns:
    The bounds, margins (Euclidean, SGN, true), ``beta``, the band, the optimal ratio, the step bounds and
    a flow trajectory from ``x_0 = (0.15, -0.15)`` (Euclidean norm grows, ``M``-norm decays).
  """
  jac = np.array([[mu1, a], [b, mu2]], np.float64)
  mu, coupling = block_bounds(jac, (1, 1))
  w = np.asarray(w, np.float64)
  m = metric(w, (1, 1))
  alpha_true, beta = metric_constants(jac, m)
  alpha = sgn_margin(mu, coupling, w)
  w_opt, alpha_opt = optimal_weights(mu, coupling)
  # Flow x' = -J x, exactly: x(t) = expm(-J t) x0.
  times = np.linspace(0, 3, 301)
  x0 = np.array([0.15, -0.15])
  traj = np.array([expm(-jac * t) @ x0 for t in times])
  return {
      'jacobian': jac, 'mu': mu, 'L': coupling, 'w': w, 'euclidean_margin': euclidean_margin(jac),
      'alpha_sgn': alpha, 'alpha_true': alpha_true, 'beta': beta, 'w_opt': w_opt, 'alpha_opt': alpha_opt,
      'band': two_player_band(mu, coupling), 'euler_bound': euler_step_bound(alpha, beta),
      'rk4_guideline': rk4_step_guideline(beta, alpha), 'euler_true': stability_threshold(jac, 'euler'),
      'rk4_true': stability_threshold(jac, 'rk4'), 'times': times, 'trajectory': traj,
      'euclidean_norm': np.linalg.norm(traj, axis=1),
      'metric_norm': np.sqrt(np.einsum('ti,ij,tj->t', traj, m, traj)),
  }


def lq_coupling_matrix(d1: int = 32, seed: int = 12345) -> np.ndarray:
  """A random orthogonal ``d1 x d1`` matrix (QR of a Gaussian, signs fixed by ``diag(R) > 0``)."""
  q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((d1, d1)))
  signs = np.sign(np.diag(r))
  signs[signs == 0] = 1
  return q * signs


def lq_jacobian(lam: float, q1: np.ndarray, q2: np.ndarray, base: np.ndarray, a: float = 10.0,
                b: float = 0.05) -> np.ndarray:
  """``H(lambda) = [[Q_1, lambda a R], [lambda b R^T, Q_2]]``: the LQ game's (constant) Jacobian."""
  return np.block([[q1, lam * a * base], [lam * b * base.T, q2]])


def lq_sweep(lambdas: Sequence[float] = tuple(np.linspace(0, 2.5, 61)), d: int = 64, a: float = 10.0,
             b: float = 0.05, mu0: float = 1.0, seed: int = 12345, ratio: float | None = None
             ) -> dict[str, np.ndarray]:
  """Margins and step bounds of the paper's LQ game (``Q_i = mu0 I``, orthogonal ``R``) across ``lambda``.

  The weights are the official code's "balanced" choice ``w_2 / w_1 = a / b`` (= ``L_12 / L_21``, optimal).
  """
  d1 = d // 2
  base = lq_coupling_matrix(d1, seed)
  q = mu0 * np.eye(d1)
  w = np.array([1.0, ratio if ratio is not None else a / b])
  m = metric(w, (d1, d1))
  out = {k: [] for k in ('gamma_euc', 'alpha_sgn', 'alpha_true', 'beta', 'euler_bound', 'rk4_guideline',
                         'euler_true', 'rk4_true')}
  for lam in lambdas:
    jac = lq_jacobian(lam, q, q, base, a, b)
    mu, coupling = block_bounds(jac, (d1, d1))
    alpha = sgn_margin(mu, coupling, w)
    alpha_true, beta = metric_constants(jac, m)
    out['gamma_euc'].append(euclidean_margin(jac))
    out['alpha_sgn'].append(alpha)
    out['alpha_true'].append(alpha_true)
    out['beta'].append(beta)
    out['euler_bound'].append(euler_step_bound(alpha, beta))
    out['rk4_guideline'].append(rk4_step_guideline(beta, alpha))
    out['euler_true'].append(stability_threshold(jac, 'euler'))
    out['rk4_true'].append(stability_threshold(jac, 'rk4'))
  res = {k: np.array(v) for k, v in out.items()}
  res.update(lambdas=np.asarray(lambdas, np.float64), w=w)
  return res


def lq_band(lam: float = 1.0, ratios: Sequence[float] = tuple(np.geomspace(0.1, 1e4, 161)), d: int = 64,
            a: float = 10.0, b: float = 0.05, seed: int = 12345) -> dict[str, np.ndarray]:
  """``alpha*(r)`` and ``alpha_true(r)`` over weight ratios at one coupling, with the closed-form band."""
  d1 = d // 2
  base = lq_coupling_matrix(d1, seed)
  jac = lq_jacobian(lam, np.eye(d1), np.eye(d1), base, a, b)
  mu, coupling = block_bounds(jac, (d1, d1))
  ratios = np.asarray(ratios, np.float64)
  alpha_true = np.array([metric_constants(jac, metric((1.0, r), (d1, d1)))[0] for r in ratios])
  return {'lam': lam, 'ratios': ratios, 'alpha_sgn': two_player_margin(mu, coupling, ratios),
          'alpha_true': alpha_true, 'band': np.array(two_player_band(mu, coupling)), 'mu': mu, 'L': coupling,
          'r_opt': optimal_weights(mu, coupling)[0][1]}


def lq_phase(lambdas: Sequence[float], multipliers: Sequence[float] = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0),
             d: int = 64, a: float = 10.0, b: float = 0.05, seed: int = 12345, steps: int = 800,
             num_pairs: int = 16) -> dict[str, Any]:
  """Simulated Euler and RK4 runs at ``h = c * (certified step)`` for each coupling: contraction or not.

  For each method and ``lambda`` with a positive certificate, the ``M``-norm contraction of ``num_pairs``
  random differences over ``steps`` steps is measured; Euler's measured per-step ratio is compared with the
  certified factor ``sqrt(1 - 2 h alpha + h^2 beta^2)``.
  """
  sweep = lq_sweep(lambdas, d, a, b, seed=seed)
  d1 = d // 2
  base = lq_coupling_matrix(d1, seed)
  m = metric(sweep['w'], (d1, d1))
  records = []
  for i, lam in enumerate(sweep['lambdas']):
    jac = lq_jacobian(lam, np.eye(d1), np.eye(d1), base, a, b)
    for method, bound in (('euler', sweep['euler_bound'][i]), ('rk4', sweep['rk4_guideline'][i])):
      if bound <= 0:
        continue
      for c in multipliers:
        h = c * bound
        sim = simulate_contraction(jac, m, h, method, steps, num_pairs, seed=i)
        rec = {'lam': float(lam), 'method': method, 'multiplier': float(c), 'h': float(h),
               'rho': spectral_radius(step_matrix(jac, h, method)), 'rate': sim['rate'],
               'max_ratio': sim['max_ratio']}
        if method == 'euler':
          rec['certified_factor'] = float(euler_factor(h, sweep['alpha_sgn'][i], sweep['beta'][i]))
        records.append(rec)
  return {'sweep': sweep, 'records': records}


def lq_random_suite(lambdas: Sequence[float] = tuple(np.linspace(0, 2.5, 7)), num_games: int = 30,
                    d: int = 64, a: float = 10.0, b: float = 0.05, mu0: float = 1.0, seed: int = 12345
                    ) -> dict[str, np.ndarray]:
  """Random LQ games ``Q_i = R_i^T R_i + mu0 I`` (Gaussian ``R_i``), ``||R||_2 = 1``: certification rates.

  ``mu_i = lambda_min(Q_i)`` and ``L_12 = lambda a``, ``L_21 = lambda b``; weights ``w_2 / w_1 = a / b``.
  """
  d1 = d // 2
  w = np.array([1.0, a / b])
  m = metric(w, (d1, d1))
  euc, sgn, true = (np.zeros((num_games, len(lambdas))) for _ in range(3))
  for s in range(num_games):
    rng = np.random.default_rng(seed + 1000 * s)
    r1, r2 = rng.standard_normal((d1, d1)), rng.standard_normal((d1, d1))
    q1, q2 = r1.T @ r1 + mu0 * np.eye(d1), r2.T @ r2 + mu0 * np.eye(d1)
    base = rng.standard_normal((d1, d1))
    base /= np.linalg.norm(base, 2)
    for j, lam in enumerate(lambdas):
      jac = lq_jacobian(lam, q1, q2, base, a, b)
      mu, coupling = block_bounds(jac, (d1, d1))
      euc[s, j] = euclidean_margin(jac)
      sgn[s, j] = sgn_margin(mu, coupling, w)
      true[s, j] = metric_constants(jac, m)[0]
  return {'lambdas': np.asarray(lambdas, np.float64), 'gamma_euc': euc, 'alpha_sgn': sgn, 'alpha_true': true,
          'rate_euclidean': (euc > 0).mean(0), 'rate_sgn': (sgn > 0).mean(0), 'rate_true': (true > 0).mean(0)}
