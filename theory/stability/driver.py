"""``run``: the exact linear experiment and both nonlinear models, in the full or a notebook-sized setting."""

from __future__ import annotations

from typing import Any

import numpy as np

from theory.stability.data import sparse_regression_data, sphere_teacher_data
from theory.stability.linear import linear_experiment
from theory.stability.nonlinear import nonlinear_experiment


def run(small: bool = False, seed: int = 0) -> dict[str, Any]:
  """The exact linear experiment and both nonlinear models, as in the figures.

  Args:
    small: a notebook-sized setting (seconds) instead of the full-size figures.
    seed: integer seed.

  Returns:
    ``{'linear', 'diagonal', 'relu'}`` result dicts for the ``plot_*`` functions.
  """
  if small:
    linear = linear_experiment(seed, num_points=16, dim=6, num_lrs=24, num_chains=2048, num_steps=60,
                               survey_cases=30)
    diag_data = sparse_regression_data(seed, num_points=20, dim=40, sparsity=3)
    relu_data = sphere_teacher_data(seed, num_points=20, dim=5, num_test=500)
    d_lrs, r_lrs, d_steps, r_steps, width, r_tol = (np.geomspace(0.01, 0.4, 6), np.geomspace(0.3, 3.0, 6), 4000,
                                                    6000, 40, 1e-6)
  else:
    linear = linear_experiment(seed)
    diag_data = sparse_regression_data(seed)
    relu_data = sphere_teacher_data(seed)
    d_lrs, r_lrs, d_steps, r_steps, width, r_tol = (np.geomspace(0.02, 0.6, 12), np.geomspace(0.25, 3.0, 10),
                                                    10000, 15000, 50, 1e-8)
  n_d, n_r = len(diag_data['y']), len(relu_data['y'])
  return {
      'linear': linear,
      'diagonal': nonlinear_experiment('diagonal', diag_data, d_lrs, (1, 4, n_d), d_steps, 1e-8, seed,
                                       init_scale=0.3),
      'relu': nonlinear_experiment('relu', relu_data, r_lrs, (1, 4, n_r), r_steps, r_tol, seed, width),
  }
