"""The last-iterate experiment: every setting of Liu & Zhou (2312.08531) on a closed-form problem, the measured
``F(x_T) - F*`` quantiles against ``T``, their fitted log-log slopes and the paper's exponent beside them.

Counting and conventions: ``T`` counts stochastic gradients (one per step); suboptimality is measured with the
exact ``F`` (not a sample); quantiles are over independent seeds (the median, and the 0.9 quantile as the tail);
slopes are least-squares fits over ``T >= t_min``; step sizes are the anytime ones of
:mod:`theory.last_iterate.csmd`.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from theory.last_iterate import problems as problems_lib
from theory.last_iterate.csmd import run_csmd, schedule
from theory.last_iterate.rates import (bound_shape, log_slope_of_bound, predicted_exponent, quadratic_expected_gap,
                                       quantile_slopes)

# name: (problem factory, its keyword arguments, schedule kind, base step eta, moment order p of the noise).
CASES = {
    'lipschitz_convex': ('absolute_regression', {}, 'power', 0.5, 2.0),
    'lipschitz_strongly_convex': ('l1_strongly_convex', {}, 'strongly_convex', None, 2.0),
    'smooth_convex': ('ill_conditioned_quadratic', {}, 'power', 1.0, 2.0),
    'composite_strongly_convex': ('lasso_composite', {}, 'strongly_convex', None, 2.0),
    'simplex_mirror_descent': ('simplex_quadratic', {}, 'power', 1.0, 2.0),
    'heavy_tailed_convex': ('absolute_regression', {'noise': 'student', 'df': 1.5}, 'power', 0.5, 1.5),
    'heavy_tailed_composite': ('lasso_composite', {'noise': 'student', 'df': 1.5}, 'strongly_convex', None, 1.5),
}


def checkpoints(t_max: int, per_decade: int = 4) -> np.ndarray:
  """Log-spaced integer ``T`` from 10 to ``t_max``.

  Example:
    >>> checkpoints(1000, per_decade=1).tolist()
    [10, 100, 1000]
  """
  n = int(round(per_decade * (math.log10(t_max) - 1))) + 1
  return np.unique(np.round(np.geomspace(10, t_max, n)).astype(np.int64))


def rate_case(name: str, t_max: int = 10_000, num_seeds: int = 100, dim: int = 10, t_min: int = 100,
              seed: int = 0) -> dict:
  """One setting of :data:`CASES`: quantile curves, fitted slopes, the predicted exponent and bound shape."""
  if name not in CASES:
    raise ValueError(f'last_iterate.rate_case: unknown case {name!r}; known: {sorted(CASES)}')
  factory, kwargs, kind, eta, p = CASES[name]
  problem = problems_lib.PROBLEMS[factory](dim=dim, **kwargs)
  power = 1.0 / p
  steps_fn = schedule(kind, eta or 0.0, problem.mu, power)
  ts = checkpoints(t_max)
  r = run_csmd(problem, steps_fn, ts, num_seeds, seed)
  out = {'name': name, 'problem': problem.name, 'setting': problem.setting, 'geometry': problem.geometry,
         'noise': problem.noise, 'p': p, 'schedule': kind if kind != 'power' else f'{eta} / t^{power:.3g}',
         'T': ts, 'median': np.median(r['last'], 0), 'q90': np.quantile(r['last'], 0.9, 0),
         'median_average': np.median(r['average'], 0),
         'slopes': quantile_slopes(r, t_min), 'slopes_average': quantile_slopes(r, t_min, which='average'),
         'slopes_last_decade': quantile_slopes(r, max(t_min, ts[-1] // 10)),
         'predicted_exponent': predicted_exponent(problem.setting, p),
         'bound_slope': log_slope_of_bound(problem.setting, ts[ts >= t_min], p),
         'bound_shape': bound_shape(problem.setting, ts, p), 'num_seeds': num_seeds}
  if problem.name == 'ill_conditioned_quadratic' and problem.noise == 'gaussian':
    s = 1.0 / np.arange(1, dim + 1) ** 2
    etas = np.array([steps_fn(t) for t in range(1, ts[-1] + 1)], np.float64)
    exact = quadratic_expected_gap(s, problem.x0 - problem.x_star, 1.0, etas)[ts - 1]
    out['exact_mean'] = exact
    out['mean_over_exact'] = r['last'].mean(0) / exact
  return out


def rate_experiment(cases: Sequence[str] = tuple(CASES), **kwargs) -> list[dict]:
  """:func:`rate_case` for each case."""
  return [rate_case(c, **kwargs) for c in cases]
