"""The Flag Aggregator's pairwise regulariser (lambda > 0) against a direct minimisation of its objective."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy import optimize

from decentral.robust import flag


def _cone(n=6, d=3, half_angle=0.45, seed=0):
  """Unit vectors within ``half_angle`` radians of e_1 (pairwise angles < 60 degrees: every |Y^T d_ij| < 1)."""
  rng = np.random.default_rng(seed)
  tilt = rng.uniform(0.1, half_angle, n)
  phi = rng.uniform(0, 2 * np.pi, n)
  return np.stack([np.cos(tilt), np.sin(tilt) * np.cos(phi), np.sin(tilt) * np.sin(phi)], 1)[:, :d]


def _objective(y, x, lam):
  """Flag median objective with the code's pairwise terms at unit directions y (r = 1), vectorised over y."""
  n = len(x)
  y = np.atleast_2d(y)
  y = y / np.linalg.norm(y, axis=-1, keepdims=True)
  data = np.sum(np.sqrt(np.maximum(1 - (y @ x.T) ** 2, 0)), axis=-1)
  i, j = np.where(~np.eye(n, dtype=bool))
  pairs = np.sum(np.sqrt(np.abs(1 - (y @ (x[i] - x[j]).T) ** 2)), axis=-1)
  return data + (lam / (n * (n - 1))) ** 2 * pairs


def _direct_minimum(x, lam):
  """Exhaustive search over a grid of the hemisphere (directions up to sign), refined by Nelder-Mead."""
  theta, phi = np.meshgrid(np.linspace(0, np.pi / 2, 181), np.linspace(0, 2 * np.pi, 721), indexing='ij')
  grid = np.stack([np.cos(theta), np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi)], -1).reshape(-1, 3)
  start = grid[np.argmin(_objective(grid, x, lam))]
  res = optimize.minimize(lambda v: _objective(v, x, lam)[0], start, method='Nelder-Mead',
                          options={'xatol': 1e-10, 'fatol': 1e-14, 'maxiter': 4000})
  return res.x / np.linalg.norm(res.x), res.fun


def test_regularised_flag_median_reaches_the_minimum_of_its_objective(x64):
  x = _cone()
  n = len(x)
  for lam in (0.0, 3.0 * n * (n - 1)):
    y, best = _direct_minimum(x, lam)
    # Eager: the IRLS loop is unrolled under jit, and 60 iterations compile slowly.
    out = np.asarray(flag.flag_aggregator(jnp.asarray(x), key=jax.random.key(0), r=1, iters=60, lam=lam))
    # (1/r) sum_i Y Y^T x_i; IRLS stops once the objective decreases by < 1e-10, a direction ~1e-5 from the
    # minimiser (the objective is quadratic there).
    np.testing.assert_allclose(out, y * (y @ x.sum(0)), atol=1e-4)
    y_ours = out / np.linalg.norm(out)
    assert _objective(y_ours, x, lam)[0] <= best + 1e-9
  # The regulariser moves the answer on this input (so the check above can tell the two apart).
  y0, _ = _direct_minimum(x, 0.0)
  y1, _ = _direct_minimum(x, 3.0 * n * (n - 1))
  assert np.abs(y0 * (y0 @ x.sum(0)) - y1 * (y1 @ x.sum(0))).max() > 0.05


def test_one_regularised_step_is_the_codes_weighted_flag_mean(x64):
  # One FlagIRLS step of the official flag_mean_iteration with lambda_ > 0, written out densely: the SVD of the
  # weighted data and weighted ordered differences, starting from the same random Y0.
  x = _cone(n=5, seed=3)
  n, lam, eps = len(x), 2.0, 1e-7
  key = jax.random.key(4)
  y0 = np.stack([np.asarray(jax.random.uniform(jax.random.fold_in(key, 0), (3, 1), jnp.float64)) - 0.5])[0]
  y0 = y0 / np.linalg.norm(y0)
  cols = [(abs(1 - (xi @ y0).item() ** 2) + eps) ** -0.25 * xi for xi in x]
  cols += [(abs(1 - ((xi - xj) @ y0).item() ** 2) + eps) ** -0.25 * lam / (n * (n - 1)) * (xi - xj)
           for i, xi in enumerate(x) for j, xj in enumerate(x) if i != j]
  y1 = np.linalg.svd(np.stack(cols, 1))[0][:, :1]
  objective = lambda y: _objective(y[:, 0], x, lam)[0]
  expect = y1 @ (y1.T @ x.sum(0)) if objective(y1) < objective(y0) else y0 @ (y0.T @ x.sum(0))
  out = flag.flag_aggregator(jnp.asarray(x), key=key, r=1, iters=1, lam=lam)
  np.testing.assert_allclose(out, expect, rtol=1e-8, atol=1e-10)
