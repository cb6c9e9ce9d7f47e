"""Tests of theory.convex_relu against CVXPY optima (tests/theory/fixtures/convex_relu_cvxpy.npz, see the script
beside it), a hand-computed ADMM iteration, and the certificate's bounds."""

from __future__ import annotations

import os

import numpy as np
import pytest

from theory import convex_relu as cr

FIXTURE = os.path.join(os.path.dirname(__file__), 'fixtures', 'convex_relu_cvxpy.npz')


@pytest.fixture(scope='module')
def ref():
  return dict(np.load(FIXTURE))


def test_pattern_enumeration_is_complete_and_sampling_is_a_subset(ref):
  x2 = ref['x2']
  patterns, gates = cr.enumerate_patterns_2d(x2)
  np.testing.assert_array_equal(patterns, ref['all_patterns'])
  x = cr.add_bias(x2)
  np.testing.assert_array_equal((x @ gates >= 0).astype(float), patterns)
  many, _ = cr.sample_patterns(x, 20000, seed=3)
  all_set = {tuple(c) for c in patterns.T}
  assert {tuple(c) for c in many.T} <= all_set and many.shape[1] > 0.8 * len(all_set)
  # n points in general position in the plane have n^2 - n + 2 dichotomies by a line (Cover), one of them empty.
  assert len(all_set) == 12 ** 2 - 12 + 1


def test_admm_first_iteration_by_hand(ref, x64):
  x, y, patterns = cr.add_bias(ref['x2']), ref['y_reg'], ref['sampled_patterns'][:, :3]
  f, g = cr.admm_matrices(x, patterns)
  rho, beta = 0.5, 0.1
  # From zero: u = (I + F^T F / rho + G^T G)^{-1} F^T y / rho; v = group soft threshold of u; s = max(0, G u).
  u = np.linalg.solve(np.eye(f.shape[1]) + f.T @ f / rho + g.T @ g, f.T @ y / rho)
  blocks = u.reshape(6, 3)
  v = np.maximum(0, 1 - beta / (rho * np.linalg.norm(blocks, axis=1, keepdims=True))) * blocks
  r = cr.admm(x, y, patterns, beta, rho=rho, iterations=1)
  r_obj = 0.5 * np.sum((f @ v.ravel() - y) ** 2) + beta * np.linalg.norm(v, axis=1).sum()
  assert r['objective'][0] == pytest.approx(r_obj, rel=1e-12)
  np.testing.assert_allclose(np.vstack([r['v'], r['w']]), v, atol=1e-12)
  np.testing.assert_allclose(g.T @ g, np.kron(np.eye(6), x.T @ x), atol=1e-12)


def test_admm_reaches_the_cvxpy_optimum_linearly(ref, x64):
  x, y = cr.add_bias(ref['x2']), ref['y_reg']
  r = cr.admm(x, y, ref['sampled_patterns'], 0.1, rho=0.1, iterations=1500)
  gap = r['objective'] - ref['p_star_squared_sampled']
  assert abs(gap[-1]) < 1e-8 * ref['p_star_squared_sampled']
  assert cr.cone_violation(x, ref['sampled_patterns'], r['v'], r['w']) < 1e-8
  # Linear convergence: the error falls by orders of magnitude between iteration 300 and 1000.
  assert abs(gap[1000]) < 1e-3 * abs(gap[300])
  # Sampled patterns give an upper bound of the all-pattern optimum.
  assert ref['p_star_squared_sampled'] >= ref['p_star_squared_all']


def test_dual_certificate_brackets_the_global_optimum(ref, x64):
  x, y, patterns = cr.add_bias(ref['x2']), ref['y_reg'], ref['all_patterns']
  p_star = float(ref['p_star_squared_all'])
  r = cr.admm(x, y, patterns, 0.1, rho=0.3, iterations=800)
  u, alpha = cr.recover_network(r['v'], r['w'], tol=1e-6)
  upper = cr.nonconvex_objective(x, y, u, alpha, 0.1)
  cert = cr.dual_certificate(x, y, patterns, y - cr.relu_network(x, u, alpha), 0.1)
  assert cert['dual_value'] <= p_star + 1e-9 <= upper + 2e-9
  assert (upper - cert['dual_value']) / upper < 2e-2
  # Any dual direction gives a lower bound, e.g. y itself.
  assert cr.dual_certificate(x, y, patterns, y, 0.1)['dual_value'] <= p_star
  # The recovered network and the convex point have the same objective when the cone constraints hold.
  v, w = r['v'], r['w']
  assert cr.convex_objective(x, y, patterns, v, w, 0.1) == pytest.approx(upper, rel=1e-3)


def test_gated_relu_program_is_a_relaxation(ref, x64):
  x, y, patterns = cr.add_bias(ref['x2']), ref['y_reg'], ref['sampled_patterns']
  g = cr.gated_relu_fista(x, y, patterns, 0.1, iterations=800)
  assert g['objective'][-1] <= ref['p_star_squared_sampled'] + 1e-9
  assert abs(g['objective'][-1] - g['objective'][-100]) < 1e-4 * g['objective'][-1]   # converged


@pytest.mark.parametrize('i', [0, 1])
def test_robust_hinge_program_matches_cvxpy(ref, i):
  x, y, patterns = cr.add_bias(ref['x2']), ref['y_cls'], ref['sampled_patterns']
  eps = float(ref['eps'][i])
  r = cr.robust_hinge_program(x, y, patterns, 0.1, eps, tol=1e-9)
  assert r['objective'] == pytest.approx(float(ref['p_star_robust'][i]), rel=1e-6)
  assert r['lower_bound'] <= r['objective'] + 1e-12
  assert cr.robust_cone_violation(x, patterns, r['v'], r['w'], eps) < 1e-7
  loose = cr.robust_hinge_program(x, y, patterns, 0.1, eps, separate_l1=True, tol=1e-9)
  assert loose['objective'] >= r['objective'] - 1e-9   # the per-block l1 term is an upper bound


def test_nonconvex_gradient_descent_never_beats_the_certified_bound(ref, x64):
  x, y = cr.add_bias(ref['x2']), ref['y_reg']
  r = cr.train_nonconvex(x, y, width=8, beta=0.1, num_inits=3, learning_rate=0.02, steps=300)
  assert np.all(r['objective'][:, -1] >= float(ref['p_star_squared_all']) - 1e-9)
  assert np.all(r['objective'][:, -1] < r['objective'][:, 0])
