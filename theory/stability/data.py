"""Problems of the stability experiments: random rank-one per-sample Hessians (the linear setting), a sparse
linear teacher for diagonal networks and a two-neuron ReLU teacher on the sphere."""

from __future__ import annotations

import numpy as np


def rank_one_problem(seed: int, num_points: int, dim: int, equal_norms: bool = False,
                     norm_spread: float = 0.5) -> np.ndarray:
  """Random per-sample gradients ``g_i`` (rows), i.e. rank-one per-sample Hessians ``H_i = g_i g_i^T``.

  Directions are anisotropic Gaussian (coordinate scales ``1 / (1 + j)``, so ``H`` has a spread spectrum); norms
  are all equal to one when ``equal_norms``, else log-normal with standard deviation ``norm_spread``.

  Args:
    seed: integer seed.
    num_points: ``n``.
    dim: ``d``.
    equal_norms: make every ``||g_i|| = 1``.
    norm_spread: log-standard deviation of the norms otherwise.

  Returns:
    float64 array ``(n, d)``.

  Example:
    >>> import numpy as np
    >>> g = rank_one_problem(0, 5, 3, equal_norms=True)
    >>> g.shape, np.allclose(np.linalg.norm(g, axis=1), 1.0)
    ((5, 3), True)
  """
  rng = np.random.default_rng(seed)
  g = rng.normal(size=(num_points, dim)) / (1.0 + np.arange(dim))
  g /= np.linalg.norm(g, axis=1, keepdims=True)
  if not equal_norms:
    g *= np.exp(norm_spread * rng.normal(size=(num_points, 1)))
  return g


def sparse_regression_data(seed: int, num_points: int = 40, dim: int = 100, sparsity: int = 5
                           ) -> dict[str, np.ndarray]:
  """Sparse linear teacher for the diagonal network: ``y = X beta*``, ``(1/n) sum_i x_ij^2 = 1`` per column.

  Returns:
    ``{'x', 'y', 'beta_star'}`` (float64); ``beta*`` has ``sparsity`` entries ``+-1``.
  """
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(num_points, dim))
  x /= np.sqrt(np.mean(x ** 2, axis=0, keepdims=True))  # makes tr(H) = ||u||^2 + ||v||^2 exactly
  beta = np.zeros(dim)
  beta[rng.choice(dim, sparsity, replace=False)] = rng.choice([-1.0, 1.0], sparsity)
  return {'x': x, 'y': x @ beta, 'beta_star': beta}


def sphere_teacher_data(seed: int, num_points: int = 50, dim: int = 10, num_test: int = 2000
                        ) -> dict[str, np.ndarray]:
  """Points on the unit sphere labelled by a two-neuron ReLU teacher ``relu(w1^T x) - relu(w2^T x)`` (times 2).

  Returns:
    ``{'x', 'y', 'x_test', 'y_test'}`` (float64, ``||x_i|| = 1``).
  """
  rng = np.random.default_rng(seed)

  def sphere(m):
    z = rng.normal(size=(m, dim))
    return z / np.linalg.norm(z, axis=1, keepdims=True)

  w = sphere(2)
  teacher = lambda x: 2.0 * (np.maximum(x @ w[0], 0.0) - np.maximum(x @ w[1], 0.0))
  x, xt = sphere(num_points), sphere(num_test)
  return {'x': x, 'y': teacher(x), 'x_test': xt, 'y_test': teacher(xt)}
