"""Tests of theory.stability: the exact second-moment operator against batch enumeration, the threshold's
closed form against bisection on rho(T), the trace/sharpness statements, Monte Carlo, nonlinear identities."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theory import stability as st


def _bisect_threshold(g, b, hi):
  # Independent of the closed form: largest eta with rho(T) <= 1, from the explicit operator.
  lo = 0.0
  for _ in range(80):
    mid = 0.5 * (lo + hi)
    lo, hi = (mid, hi) if st.spectral_radius(g, mid, b) <= 1.0 else (lo, mid)
  return lo


def test_operator_equals_enumeration_over_batches():
  g = st.rank_one_problem(0, 7, 3)
  eta = 0.4
  for b in (1, 2, 3, 7):
    subsets = list(itertools.combinations(range(7), b))
    t = np.zeros((9, 9))
    for s in subsets:
      a = np.eye(3) - eta * g[list(s)].T @ g[list(s)] / b
      t += np.kron(a, a) / len(subsets)
    np.testing.assert_allclose(st.second_moment_operator(g, eta, b), t, atol=1e-14)


def test_threshold_closed_form_matches_bisection_and_is_monotone_in_b():
  g = st.rank_one_problem(1, 10, 4)
  lam_max = np.linalg.eigvalsh(g.T @ g / 10)[-1]
  previous = 0.0
  for b in (1, 2, 5, 10):
    eta = st.stability_threshold(g, b)
    assert _bisect_threshold(g, b, 2.0 / lam_max * 1.5) == pytest.approx(eta, rel=1e-9)
    assert st.spectral_radius(g, eta, b) == pytest.approx(1.0, abs=1e-10)
    assert st.spectral_radius(g, 0.99 * eta, b) < 1.0 < st.spectral_radius(g, 1.01 * eta, b)
    assert eta >= previous   # Mulayoff & Michaeli: non-decreasing in B
    previous = eta
    bounds = st.rayleigh_bounds(g, b)
    for name in ('sharpness', 'wu_ma_e', 'trace', 'trace_jensen'):
      assert eta <= bounds[name] * (1 + 1e-12), name


def test_gd_threshold_is_two_over_lambda_max():
  g = st.rank_one_problem(2, 9, 5)
  lam_max = np.linalg.eigvalsh(g.T @ g / 9)[-1]
  assert _bisect_threshold(g, 9, 3.0 / lam_max) * lam_max == pytest.approx(2.0, abs=1e-8)
  assert st.stability_threshold(g, 9) * lam_max == pytest.approx(2.0, abs=1e-12)


def test_sgd_b1_trace_bound_tight_iff_equal_norms():
  for seed in range(4):
    equal = st.rank_one_problem(seed, 12, 5, equal_norms=True)
    tr = np.sum(equal ** 2) / 12
    assert st.stability_threshold(equal, 1) * tr == pytest.approx(2.0, abs=1e-9)
    assert _bisect_threshold(equal, 1, 4.0 / tr) * tr == pytest.approx(2.0, abs=1e-8)
    for spread in (0.05, 0.5):
      unequal = st.rank_one_problem(seed, 12, 5, norm_spread=spread)
      assert st.stability_threshold(unequal, 1) * np.sum(unequal ** 2) / 12 < 2.0 - 1e-4


def test_trace_statement_needs_b1():
  # With B > 1 the minimum can be stable although tr(H) > 2/eta: the 2/eta form is a B = 1 statement.
  g = st.rank_one_problem(3, 20, 6, equal_norms=True)
  tr = np.sum(g ** 2) / 20
  assert st.stability_threshold(g, 4) * tr > 2.5
  # ... while the B-dependent M = I bound still holds: eta* tr <= 2 / (p + (1 - p) ||H||_F^2 / tr^2).
  assert st.stability_threshold(g, 4) <= st.rayleigh_bounds(g, 4)['trace_jensen'] * (1 + 1e-12)


def test_secular_threshold_matches_dense_pencil():
  g = st.rank_one_problem(4, 30, 10)
  h = g.T @ g / 30
  for b in (1, 3, 29):
    p = st.noise_factor(30, b)
    outer = np.einsum('ia,ib->iab', g, g).reshape(30, -1)
    k = (1 - p) * np.kron(h, h) + p * outer.T @ outer / 30
    s = np.kron(h, np.eye(10)) + np.kron(np.eye(10), h)
    w, v = np.linalg.eigh(s)
    s_inv_half = (v / np.sqrt(w)) @ v.T
    dense = 1.0 / np.linalg.eigvalsh(s_inv_half @ k @ s_inv_half)[-1]
    assert st.stability_threshold(g, b) == pytest.approx(dense, rel=1e-10)


@pytest.mark.parametrize('b', [1, 3])
def test_monte_carlo_growth_rate_matches_spectral_radius(b):
  g = st.rank_one_problem(5, 12, 5, equal_norms=True)
  eta_star = st.stability_threshold(g, b)
  for factor in (0.8, 1.2):
    r = st.simulate_linear_sgd(g, factor * eta_star, b, seed=b, num_chains=4096, num_steps=40)
    log_rho = np.log(r['rho'])
    assert np.sign(r['fitted_log_rate']) == np.sign(factor - 1.0)
    assert r['fitted_log_rate'] == pytest.approx(log_rho, rel=0.15)


def test_diagonal_net_identities_and_sgd_minimum_is_stable(x64):
  data = st.sparse_regression_data(0, num_points=12, dim=20, sparsity=2)
  eta = 0.05
  params, losses = st.train_to_interpolation('diagonal', data, [eta], batch_size=1, num_steps=3000,
                                             init_scale=0.5)
  assert losses[0] < 1e-8
  p = jax.tree.map(lambda a: a[0], params)
  m = st.sharpness_metrics('diagonal', p, data, batch_size=1)
  # At interpolation with unit-mean-square columns, tr(H) = ||u||^2 + ||v||^2 >= 2 ||u * v||_1.
  assert m['trace'] == pytest.approx(float(jnp.sum(p['u'] ** 2 + p['v'] ** 2)), rel=1e-4)
  assert m['trace'] >= 2 * m['l1']
  # The minimum SGD(B=1) converged to is linearly stable for it, hence tr(H) <= 2/eta and ||beta||_1 <= 1/eta.
  assert eta <= m['threshold']
  assert eta * m['trace'] <= 2.0 and m['l1'] <= 1.0 / eta
  # optim's matrix-free estimates agree with the dense oracle.
  assert m['lanczos_lambda_max'] == pytest.approx(m['lambda_max'], rel=1e-8)
  assert abs(m['hutchinson_trace'] - m['trace']) < 4 * m['hutchinson_stderr']


def test_relu_trace_formula_and_path_norm_bound(x64):
  data = st.sphere_teacher_data(0, num_points=15, dim=4, num_test=10)
  params = st.init_params('relu', 0, 4, width=6)
  # Away from interpolation H != G, so compare the formula with tr(G) = mean_i ||grad f_i||^2 computed densely.
  x = jnp.asarray(data['x'])
  grads = jax.vmap(lambda xi: jax.flatten_util.ravel_pytree(jax.grad(lambda p: st.relu_net(p, xi[None])[0])(
      params))[0])(x)
  pre = x @ params['w'].T
  formula = jnp.sum(jnp.mean(jax.nn.relu(pre) ** 2, 0) + params['a'] ** 2 * jnp.mean((pre > 0).astype(pre.dtype), 0))
  assert float(jnp.mean(jnp.sum(grads ** 2, 1))) == pytest.approx(float(formula), rel=1e-10)
  m = st.sharpness_metrics('relu', params, data, batch_size=15)
  assert float(formula) >= 2 * m['weighted_path_norm']


def test_bad_input():
  g = st.rank_one_problem(0, 5, 2)
  with pytest.raises(ValueError, match='batch_size'):
    st.stability_threshold(g, 0)
  with pytest.raises(ValueError, match='learning_rate'):
    st.second_moment_operator(g, -1.0, 1)
  with pytest.raises(ValueError, match='grads'):
    st.stability_threshold(np.ones(3), 1)
  with pytest.raises(ValueError, match='model'):
    st.init_params('cnn', 0, 3)
