"""Tests of theory.hessian.batch_size_lr: MP moments and edges against sampled matrices, the exact SGD stability
threshold against Monte Carlo, and the linear scaling of the largest stable SGD learning rate."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate

from theory.hessian import batch_size_lr as bl


@pytest.mark.parametrize('gamma', [0.25, 0.5])
def test_marchenko_pastur_density_moments(gamma):
  lo, hi = bl.marchenko_pastur_edges(gamma)
  mass = scipy.integrate.quad(lambda x: bl.marchenko_pastur_density(np.array([x]), gamma)[0], lo, hi)[0]
  m1 = scipy.integrate.quad(lambda x: x * bl.marchenko_pastur_density(np.array([x]), gamma)[0], lo, hi)[0]
  m2 = scipy.integrate.quad(lambda x: x * x * bl.marchenko_pastur_density(np.array([x]), gamma)[0], lo, hi)[0]
  assert (mass, m1, m2) == pytest.approx((1.0, 1.0, 1.0 + gamma), abs=1e-6)


def test_batch_spectrum_matches_mp_edge_and_bbp():
  flat = bl.batch_spectrum(dim=200, batch_sizes=(100, 400), spike=1.0, num_batches=5)
  np.testing.assert_allclose(flat['lambda_max'].mean(1), flat['predicted_top'], rtol=0.06)
  spiked = bl.batch_spectrum(dim=200, batch_sizes=(100, 400), spike=10.0, num_batches=5)
  np.testing.assert_allclose(spiked['lambda_max'].mean(1), spiked['predicted_top'], rtol=0.06)
  # Moments of the sampled spectrum: (1/d) tr H_B = 1 and (1/d) tr H_B^2 = 1 + gamma (+ O(1/d)).
  eig = flat['eigenvalues'][1]
  assert np.mean(eig) == pytest.approx(1.0, abs=0.03) and np.mean(eig ** 2) == pytest.approx(1.5, abs=0.06)


def test_sgd_threshold_is_the_mean_square_boundary():
  # E[(I - eta H_B)^2] = (1 - 2 eta + eta^2 (1 + (d + 1)/B)) I for isotropic Gaussian rows; at the threshold the
  # factor is 1 (the boundary of mean-square stability). Monte Carlo over batches.
  d, b = 6, 3
  eta = bl.sgd_stability_threshold(b, d)
  rng = np.random.default_rng(0)
  xs = rng.normal(size=(100_000, b, d))
  hb = np.einsum('nbi,nbj->nij', xs, xs) / b
  step = np.eye(d) - eta * hb
  second = np.einsum('nij,njk->ik', step, step) / len(xs)
  np.testing.assert_allclose(second, np.eye(d), atol=0.03)   # rho = 1 exactly at the threshold


def test_largest_stable_sgd_learning_rate_grows_linearly(x64):
  r = bl.lr_scaling_sweep(dim=20, batch_sizes=(1, 2, 4, 8), steps=80, noise=0.0, num_lrs=12, seeds=2, adam=False)
  assert r['slopes']['sgd_max_stable'] == pytest.approx(r['slopes']['sgd_threshold'], abs=0.2)
  assert np.all(r['sgd_max_stable'] <= r['sgd_threshold'] * 1.3)
