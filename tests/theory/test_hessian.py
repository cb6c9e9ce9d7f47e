"""Tests of theory.hessian against dense oracles: jax.hessian, scipy's W1, exact batch enumeration."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
import numpy as np
import pytest
import scipy.stats

import optim
from theory import hessian as th


def _small_problem(k=3, n=30, dim=4, hidden=5, seed=0):
  # Untrained: the residual p_i - e_{y_i} is far from zero, so H - G is far from zero too.
  x, y = th.gaussian_clusters(seed, n, dim, k)
  return th.init_mlp(seed, [dim, hidden, k]), x, y


def test_gauss_newton_plus_residual_is_the_hessian(x64):
  params, x, y = _small_problem()
  dec = th.exact_decomposition(params, x, y)
  flat, unravel = ravel_pytree(params)
  # Independent oracles: jax.hessian of the loss, and the residual as the Hessian of the logits contracted
  # with the (frozen) loss gradient in logit space, (1/N) sum_i (p_i - e_{y_i})^T z_i(w).
  hess = np.asarray(jax.jit(jax.hessian(lambda w: th.cross_entropy(unravel(w), x, y)))(flat))
  resid_weights = (jax.nn.softmax(th.mlp_logits(params, x)) - jax.nn.one_hot(y, 3)) / x.shape[0]
  resid = np.asarray(jax.jit(jax.hessian(lambda w: jnp.sum(resid_weights * th.mlp_logits(unravel(w), x))))(flat))
  np.testing.assert_allclose(dec.hessian, hess, atol=1e-12)
  np.testing.assert_allclose(dec.residual, resid, atol=1e-10)
  np.testing.assert_allclose(dec.gauss_newton + resid, hess, atol=1e-10)
  # The GGN is PSD and equals optim's matrix-free GGN product.
  assert np.linalg.eigvalsh(dec.gauss_newton)[0] > -1e-12
  loss = lambda z, t: jnp.mean(jax.vmap(lambda zi, ti: -jax.nn.log_softmax(zi)[ti])(z, t))
  ggn = optim.dense_matrix(optim.gauss_newton_matvec(th.mlp_logits, loss, params, x, y), params)
  np.testing.assert_allclose(dec.gauss_newton, np.asarray(ggn), atol=1e-12)
  # The residual is indefinite here (not a PSD matrix in disguise).
  eig_r = np.linalg.eigvalsh(dec.residual)
  assert eig_r[0] < -1e-6 < 1e-6 < eig_r[-1]


def test_class_decomposition_splits_the_gauss_newton(x64):
  params, x, y = _small_problem(k=3)
  between, within = th.class_decomposition(params, x, y, 3)
  g = th.exact_decomposition(params, x, y).gauss_newton
  np.testing.assert_allclose(between + within, g, atol=1e-12)
  assert np.linalg.eigvalsh(within)[0] > -1e-12
  # Each class mean of A^{1/2} J has rank <= k - 1 (softmax kills 1), so rank(G_between) <= k (k - 1).
  eig_b = np.linalg.eigvalsh(between)
  assert np.sum(eig_b > 1e-10 * eig_b[-1]) <= 3 * 2


def test_wasserstein1_matches_scipy():
  rng = np.random.default_rng(0)
  nodes, weights, eig = rng.normal(size=(3, 7)), rng.uniform(size=(3, 7)), rng.normal(size=50)
  ours = th.wasserstein1(nodes, weights / weights.sum(), eig)
  ref = scipy.stats.wasserstein_distance(nodes.ravel(), eig, u_weights=weights.ravel())
  assert ours == pytest.approx(ref, rel=1e-12)
  assert th.wasserstein1(eig, np.full(50, 1 / 50), eig) == pytest.approx(0.0, abs=1e-15)


def test_slq_distance_falls_with_steps_and_probes(x64):
  x, y = th.gaussian_clusters(0, 60, 6, 3)
  params, _ = th.train(th.init_mlp(0, [6, 8, 3]), x, y, steps=50, learning_rate=0.5)
  eig = np.linalg.eigvalsh(th.exact_decomposition(params, x, y).hessian)
  r = th.slq_convergence(params, x, y, eig, steps=(3, 40), probes=(1, 16), repeats=3)
  w1 = r['w1'] / r['spectral_range']
  assert w1[-1, -1] < 0.5 * w1[0, 0]
  assert w1[-1, -1] < w1[-1, 0]   # more probes at many steps
  assert w1[-1, -1] < w1[0, -1]   # more steps at many probes


def test_outlier_count_is_k_minus_one_on_clusters(x64):
  # The rule of the module docstring (eigenvalues of H above lambda_max(G_within)) on overlapping clusters.
  k = 3
  x, y = th.gaussian_clusters(k, 300, 10, k)
  r = th.spectrum_experiment(x, y, k, hidden=(16,), random_label_baseline=False)
  assert r['num_outliers'] == k - 1, (r['outliers'], r['bulk_edge'])


def test_batch_covariance_factor_and_prediction(x64):
  # Exact finite-population fact behind the prediction: E_S ||H_S - H||_F^2 = p_B E_i ||H_i - H||_F^2.
  params, x, y = _small_problem(k=2, n=6, dim=3, hidden=3)
  flat, unravel = ravel_pytree(params)
  one = jax.jit(jax.hessian(lambda w, xi, yi: th.cross_entropy(unravel(w), xi[None], yi[None])))
  per = [np.asarray(one(flat, x[i], y[i])) for i in range(6)]
  h = np.mean(per, axis=0)
  var = np.mean([np.sum((hi - h) ** 2) for hi in per])
  for b in (1, 2, 4):
    subsets = list(itertools.combinations(range(6), b))
    lhs = np.mean([np.sum((np.mean([per[i] for i in s], axis=0) - h) ** 2) for s in subsets])
    assert lhs == pytest.approx((6 - b) / (b * 5) * var, rel=1e-10)
  beta = float(np.linalg.eigvalsh(h)[-1])
  assert th.granziol_prediction(beta, var, h.shape[0], 6, 6) == beta
  r = th.batch_sharpness(params, x, y, h, batch_sizes=(2,), num_batches=2, lanczos_steps=h.shape[0])
  assert r['per_sample_variance'] == pytest.approx(var, rel=1e-10)
  assert r['lambda_max'][-1, 0] == pytest.approx(beta, rel=1e-10)   # B = N row: Lanczos vs dense


def test_bad_input():
  with pytest.raises(ValueError, match='num_classes'):
    th.gaussian_clusters(0, 10, 3, 0)
  with pytest.raises(ValueError, match='dim'):
    th.pca_features(np.zeros((5, 3)), 4)
