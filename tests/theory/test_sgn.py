"""SGN certificates: the paper's mini-toy number, the two-player band against brute force, general-N
feasibility, and the certified Euler factor against simulated contraction."""

import math

import numpy as np
import pytest

from theory import sgn


def test_mini_toy_margin_is_the_papers_0_2929():
  r = sgn.mini_toy()  # mu = 1, a = 10, b = 0.05, w = (1, 200)
  assert abs(r['alpha_sgn'] - (1 - math.sqrt(0.5))) < 1e-12
  assert abs(round(r['alpha_sgn'], 4) - 0.2929) < 1e-12
  assert abs(r['alpha_true'] - r['alpha_sgn']) < 1e-12  # M^{1/2} J M^{-1/2} is symmetric here
  assert abs(r['euclidean_margin'] - (1 - (10 + 0.05) / 2)) < 1e-12
  np.testing.assert_allclose(r['w_opt'], [1, 200])
  # The flow leaves the Euclidean ball but its M-norm decays, no faster than exp(-alpha t) allows.
  assert r['euclidean_norm'].max() > 2 * r['euclidean_norm'][0]
  assert np.all(np.diff(r['metric_norm']) <= 1e-15)
  assert np.all(r['metric_norm'] <= r['metric_norm'][0] * np.exp(-r['alpha_sgn'] * r['times']) * (1 + 1e-9))


def test_official_margin_definition_for_two_players():
  # alpha*(w) = lambda_min(W^{-1/2} C W^{-1/2}) / 2 equals the 2x2 closed form in r = w2 / w1.
  rng = np.random.default_rng(0)
  for _ in range(20):
    mu = rng.uniform(0.2, 2, 2)
    l = np.array([[0, rng.uniform(0, 3)], [rng.uniform(0, 3), 0]])
    r = math.exp(rng.uniform(-4, 4))
    assert abs(sgn.sgn_margin(mu, l, [2.0, 2.0 * r]) - sgn.two_player_margin(mu, l, r)) < 1e-12


@pytest.mark.parametrize('alpha', [0.0, 0.1])
def test_band_edges_match_brute_force(alpha):
  mu, l = np.array([1.0, 0.7]), np.array([[0, 2.0], [0.08, 0]])
  lo, hi = sgn.two_player_band(mu, l, alpha)
  r = np.geomspace(1e-2, 1e5, 400001)
  ok = r[::100][np.array([sgn.sgn_margin(mu, l, [1, x]) for x in r[::100]]) >= alpha]  # coarse, generic formula
  inside = r[sgn.two_player_margin(mu, l, r) >= alpha]
  assert abs(math.log(inside.min() / lo)) < 1e-4 and abs(math.log(inside.max() / hi)) < 1e-4
  assert ok.min() >= lo * (1 - 1e-9) and ok.max() <= hi * (1 + 1e-9)
  # The optimum is r = L12 / L21 whatever mu is.
  assert abs(r[np.argmax(sgn.two_player_margin(mu, l, r))] / (2.0 / 0.08) - 1) < 1e-3
  assert all(math.isnan(x) for x in sgn.two_player_band(mu, np.array([[0, 3.0], [0.3, 0]]), alpha))


def test_general_n_feasibility_is_the_small_gain_condition():
  rng = np.random.default_rng(1)
  agree = 0
  for _ in range(30):
    mu = rng.uniform(0.5, 1.5, 3)
    l = rng.uniform(0, 1.2, (3, 3)) * (1 - np.eye(3))
    feasible = sgn.sgn_feasible(mu, l)
    _, margin = sgn.optimal_weights(mu, l)
    agree += feasible == (margin > 1e-9)
  assert agree == 30


def test_certified_euler_factor_bounds_simulated_contraction():
  d1 = 8
  base = sgn.lq_coupling_matrix(d1, seed=3)
  jac = sgn.lq_jacobian(0.8, np.eye(d1), np.eye(d1), base)
  mu, l = sgn.block_bounds(jac, (d1, d1))
  w = np.array([1.0, 200.0])
  alpha = sgn.sgn_margin(mu, l, w)
  m = sgn.metric(w, (d1, d1))
  alpha_true, beta = sgn.metric_constants(jac, m)
  assert alpha > 0 > sgn.euclidean_margin(jac) and alpha_true >= alpha - 1e-12
  bound = sgn.euler_step_bound(alpha, beta)
  for c in (0.25, 0.5, 0.9):
    sim = sgn.simulate_contraction(jac, m, c * bound, 'euler', steps=50, num_pairs=8)
    assert sim['max_ratio'] <= sgn.euler_factor(c * bound, alpha, beta) + 1e-12 < 1
  # Beyond the exact threshold the iteration expands.
  h_true = sgn.stability_threshold(jac, 'euler')
  assert h_true >= bound
  assert sgn.simulate_contraction(jac, m, 1.1 * h_true, 'euler', steps=200)['rate'] > 1
  assert sgn.simulate_contraction(jac, m, 0.9 * sgn.stability_threshold(jac, 'rk4'), 'rk4', steps=200)['rate'] < 1


def test_bad_input_is_named():
  with pytest.raises(ValueError, match='w must'):
    sgn.sgn_margin([1, 1], [[0, 1], [1, 0]], [1, -1])
  with pytest.raises(ValueError, match='method'):
    sgn.step_matrix(np.eye(2), 0.1, 'rk2')
  with pytest.raises(ValueError, match='jacobian'):
    sgn.block_bounds(np.eye(3), (1, 1))
