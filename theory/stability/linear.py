"""The linear experiment: ``rho(T)`` over ``(eta, B)``, ``eta*(B)`` and its bounds, Monte Carlo on both sides of
the threshold, and a survey of ``eta* tr(H)`` over random problems."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from theory.stability.data import rank_one_problem
from theory.stability.monte_carlo import simulate_linear_sgd
from theory.stability.second_moment import kron_parts, noise_factor
from theory.stability.threshold import rayleigh_bounds, stability_threshold


def linear_experiment(seed: int = 0, num_points: int = 40, dim: int = 20, num_lrs: int = 40,
                      batch_sizes: Sequence[int] | None = None, num_chains: int = 8192, num_steps: int = 100,
                      survey_cases: int = 200) -> dict[str, Any]:
  """Exact stability of linearised SGD on random rank-one per-sample Hessians.

  Computes ``rho(T)`` on an ``(eta, B)`` grid, ``eta*(B)`` for every ``B``, the Rayleigh bounds, Monte Carlo
  runs at ``0.9 eta*`` and ``1.1 eta*`` for ``B = 1`` and a middle ``B`` (on the same directions with equal
  norms, see :func:`simulate_linear_sgd`), and a survey of ``eta* tr(H)`` over random
  problems: ``B = 1`` with unequal and with equal norms, and ``B = 2, 4, 8`` with equal norms.

  Args:
    seed: integer seed.
    num_points: ``n``.
    dim: ``d`` (``T`` is ``d^2 x d^2``).
    num_lrs: grid points in ``eta`` (log-spaced over ``[0.3 eta*(1), 1.5 * 2 / lambda_max]``).
    batch_sizes: ``B`` values for the heatmap (default: 1, 2, 4, ..., n).
    num_chains: Monte Carlo chains.
    num_steps: Monte Carlo steps.
    survey_cases: random problems per survey row.

  Returns:
    A dict with ``grads``, ``learning_rates``, ``batch_sizes``, ``rho`` (len(lrs), len(B)), ``threshold``,
    ``bounds`` (dict of arrays over ``B``), ``monte_carlo`` (list of :func:`simulate_linear_sgd` dicts) and
    ``survey`` (dict of arrays of ``eta* tr(H)``).
  """
  g = rank_one_problem(seed, num_points, dim)
  if batch_sizes is None:
    batch_sizes = sorted({2 ** i for i in range(int(math.log2(num_points)) + 1)} | {num_points})
  batch_sizes = [int(b) for b in batch_sizes]
  n = num_points
  threshold = np.array([stability_threshold(g, b) for b in batch_sizes])
  bounds = {k: np.array([rayleigh_bounds(g, b)[k] for b in batch_sizes])
            for k in ('sharpness', 'wu_ma_e', 'trace', 'trace_jensen', 'two_over_trace')}
  lrs = np.geomspace(0.3 * threshold[0], 1.5 * bounds['sharpness'][0], num_lrs)
  h, hh, ehh = kron_parts(g)
  eye = np.eye(dim)
  s = np.kron(h, eye) + np.kron(eye, h)
  rho = np.zeros((num_lrs, len(batch_sizes)))
  for j, b in enumerate(batch_sizes):
    p = noise_factor(n, b)
    k = (1 - p) * hh + p * ehh
    for i, eta in enumerate(lrs):
      eig = np.linalg.eigvalsh(np.eye(dim * dim) - eta * s + eta ** 2 * k)
      rho[i, j] = max(eig[-1], -eig[0])
  # Monte Carlo on the equal-norm version of the problem, where the sample mean of E||theta_t||^2 is not
  # dominated by rare chains (see simulate_linear_sgd).
  g_equal = rank_one_problem(seed, num_points, dim, equal_norms=True)
  mc = []
  for b in sorted({1, batch_sizes[len(batch_sizes) // 2]}):
    eta_star = stability_threshold(g_equal, b)
    for factor in (0.9, 1.1):
      mc.append(simulate_linear_sgd(g_equal, factor * eta_star, b, seed, num_chains, num_steps))
  return {'grads': g, 'learning_rates': lrs, 'batch_sizes': np.asarray(batch_sizes), 'rho': rho,
          'threshold': threshold, 'bounds': bounds, 'monte_carlo': mc,
          'survey': trace_survey(seed, survey_cases, num_points=min(n, 20), dim=min(dim, 10))}


def trace_survey(seed: int = 0, num_cases: int = 200, num_points: int = 20, dim: int = 10) -> dict[str, Any]:
  """``eta*(B) tr(H)`` over random rank-one problems: where ``tr(H) <= 2/eta`` holds and where it does not.

  Args:
    seed: integer seed.
    num_cases: problems per row (norm spreads drawn uniformly in ``[0.05, 1.5]`` for unequal norms).
    num_points: ``n``.
    dim: ``d``.

  Returns:
    ``{'b1_unequal', 'b1_equal', 'b2_equal', 'b4_equal', 'b8_equal', 'b4_trace_bound_ratio'}`` arrays of
    ``eta* tr(H)`` (the last: ``eta*(4)`` over the ``M = I`` bound, which must be ``<= 1``).
  """
  rng = np.random.default_rng(seed)
  out = {k: np.zeros(num_cases) for k in ('b1_unequal', 'b1_equal', 'b2_equal', 'b4_equal', 'b8_equal',
                                          'b4_trace_bound_ratio')}
  for c in range(num_cases):
    unequal = rank_one_problem(10_000 + c, num_points, dim, norm_spread=rng.uniform(0.05, 1.5))
    equal = rank_one_problem(20_000 + c, num_points, dim, equal_norms=True)
    tr_u, tr_e = np.sum(unequal ** 2) / num_points, np.sum(equal ** 2) / num_points
    out['b1_unequal'][c] = stability_threshold(unequal, 1) * tr_u
    for b in (1, 2, 4, 8):
      out[f'b{b}_equal'][c] = stability_threshold(equal, b) * tr_e
    out['b4_trace_bound_ratio'][c] = stability_threshold(unequal, 4) / rayleigh_bounds(unequal, 4)['trace']
  return out
