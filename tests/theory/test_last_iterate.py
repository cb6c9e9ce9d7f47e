"""Tests of theory.last_iterate: closed-form optima against numerical minimisation, CSMD steps by hand, the exact
expectation of SGD on a quadratic against Monte Carlo, and the rates the paper proves on small runs."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize

from theory import last_iterate as li


@pytest.mark.parametrize('factory', ['l1_strongly_convex', 'lasso_composite', 'simplex_quadratic'])
def test_closed_form_minimisers_match_a_numerical_solver(factory, x64):
  p = li.PROBLEMS[factory](dim=5, noise='none')
  value = lambda x: float(p.value(jnp.asarray(x)))
  if p.geometry == 'simplex':
    res = scipy.optimize.minimize(value, np.full(5, 0.2), method='SLSQP', bounds=[(0, 1)] * 5,
                                  constraints=[{'type': 'eq', 'fun': lambda x: x.sum() - 1}], options={'ftol': 1e-14})
    np.testing.assert_allclose(p.x_star, res.x, atol=1e-6)
    assert p.x_star.sum() == pytest.approx(1.0, abs=1e-14) and p.x_star.min() >= 0
  else:
    res = scipy.optimize.minimize(value, p.x_star + 0.3, method='Powell', options={'xtol': 1e-12, 'ftol': 1e-15})
    assert value(p.x_star) <= res.fun + 1e-12
  # Optimality by perturbation: no coordinate move decreases F.
  for j in range(5):
    for h in (1e-4, -1e-4):
      x = p.x_star.copy()
      x[j] += h
      if p.geometry == 'simplex':
        x = np.maximum(x, 0) / np.maximum(x, 0).sum()
      assert value(x) >= p.f_star - 1e-12
  assert value(p.x_star) == pytest.approx(p.f_star, abs=1e-12)


def test_absolute_regression_value_is_the_expectation(x64):
  p = li.absolute_regression(dim=4, noise='none')
  x = np.array([1.0, -0.5, 0.3, 2.0])
  a = np.random.default_rng(0).normal(size=(400_000, 4))
  mc = np.abs(a @ (x - p.x_star))
  assert float(p.value(jnp.asarray(x))) == pytest.approx(mc.mean(), abs=4 * mc.std() / math.sqrt(len(mc)))


def test_csmd_steps_by_hand(x64):
  # Euclidean composite: prox_{eta h}(x - eta g) with h = lam ||.||_1 is the soft threshold.
  p = li.lasso_composite(dim=3, lam=0.5, noise='none')
  x, g, eta = np.array([1.0, -0.2, 0.05]), np.array([0.5, 1.0, -2.0]), 0.3
  y = x - eta * g                       # [0.85, -0.5, 0.65]
  expected = np.sign(y) * np.maximum(np.abs(y) - eta * 0.5, 0)   # threshold 0.15
  np.testing.assert_allclose(li.csmd_step(p, jnp.asarray(x), jnp.asarray(g), eta), [0.7, -0.35, 0.5], atol=1e-15)
  np.testing.assert_allclose(expected, [0.7, -0.35, 0.5], atol=1e-15)
  # Simplex: x_{t+1} = x exp(-eta g) / sum(...).
  q = li.simplex_quadratic(dim=3, noise='none')
  x = np.array([0.2, 0.3, 0.5])
  w = x * np.exp(-eta * g)
  np.testing.assert_allclose(li.csmd_step(q, jnp.asarray(x), jnp.asarray(g), eta), w / w.sum(), atol=1e-15)
  # Schedules.
  assert li.schedule('power', 0.5, power=0.5)(4.0) == 0.25
  assert li.schedule('strongly_convex', 0.0, mu=2.0)(5.0) == 0.1
  with pytest.raises(ValueError, match='mu > 0'):
    li.schedule('strongly_convex', 1.0)


def test_monte_carlo_mean_matches_the_exact_expectation_on_a_quadratic(x64):
  p = li.ill_conditioned_quadratic(dim=4)
  steps = li.schedule('power', 1.0)
  ts = np.array([1, 2, 10, 50])
  r = li.run_csmd(p, steps, ts, num_seeds=2000, seed=1)
  s = 1.0 / np.arange(1, 5) ** 2
  exact = li.quadratic_expected_gap(s, p.x0 - p.x_star, 1.0, steps(np.arange(1, 51.0)))[ts - 1]
  # Step 1 by hand: e_2 = (1 - s) e_1 - xi, so E F = (1/2) sum s ((1 - s)^2 e^2 + 1).
  e1 = p.x0 - p.x_star
  assert exact[0] == pytest.approx(0.5 * np.sum(s * ((1 - s) ** 2 * e1 ** 2 + 1)), rel=1e-14)
  se = r['last'].std(0) / math.sqrt(2000)
  assert np.all(np.abs(r['last'].mean(0) - exact) < 4 * se)
  assert r['last'].dtype == np.float64


def test_last_iterate_rates_on_small_runs(x64):
  # Light tails: the fitted median slope is near the exponent of the bound (-1/2 convex, -1 strongly convex).
  convex = li.rate_case('lipschitz_convex', t_max=1000, num_seeds=48, dim=5)
  strong = li.rate_case('composite_strongly_convex', t_max=1000, num_seeds=48, dim=5)
  assert convex['slopes'][0.5] == pytest.approx(-0.5, abs=0.15)
  assert strong['slopes'][0.5] == pytest.approx(-1.0, abs=0.15)
  assert li.predicted_exponent('smooth_strongly_convex', p=1.5) == pytest.approx(-2 / 3)
  assert li.fit_slope([1, 10, 100], [2.0, 2 / 10 ** 0.5, 2 / 100 ** 0.5])[0] == pytest.approx(-0.5, abs=1e-12)
