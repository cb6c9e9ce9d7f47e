"""Tensor-program kernels: closed-form duals against quadrature, the recursions against neural-tangents' stored
kernels, exactness of one hidden layer at any width, the approach of finite networks, the semicircle and
Marchenko-Pastur laws."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.special
import scipy.stats

from theory import kernels

FIXTURE = os.path.join(os.path.dirname(__file__), 'fixtures', 'kernels', 'neural_tangents_kernels.npz')


def test_relu_duals_match_the_orthant_integrals(x64):
  q1, q2, c = 1.3, 0.7, -0.4
  cov = np.array([[q1, c], [c, q2]])
  density = scipy.stats.multivariate_normal(np.zeros(2), cov).pdf
  ev = scipy.integrate.dblquad(lambda b, a: a * b * density([a, b]), 0, np.inf, 0, np.inf, epsabs=1e-11)[0]
  evdot = scipy.stats.multivariate_normal(np.zeros(2), cov).cdf(np.zeros(2))  # P(a < 0, b < 0) = P(a > 0, b > 0)
  got = kernels.duals('relu', jnp.array(q1), jnp.array(q2), jnp.array(c))
  np.testing.assert_allclose([float(got[0]), float(got[1])], [ev, evdot], atol=1e-6)


def test_erf_duals_match_gauss_hermite_quadrature(x64):
  q1, q2, c = 1.3, 0.7, -0.4
  nodes, weights = np.polynomial.hermite_e.hermegauss(120)  # probabilists' Hermite: weight exp(-x^2 / 2)
  weights = weights / np.sqrt(2 * np.pi)
  chol = np.linalg.cholesky(np.array([[q1, c], [c, q2]]))
  u, v = np.meshgrid(nodes, nodes, indexing='ij')
  a, b = chol[0, 0] * u, chol[1, 0] * u + chol[1, 1] * v
  w = np.outer(weights, weights)
  ev = np.sum(w * scipy.special.erf(a) * scipy.special.erf(b))
  evdot = np.sum(w * 4 / np.pi * np.exp(-a ** 2 - b ** 2))
  got = kernels.duals('erf', jnp.array(q1), jnp.array(q2), jnp.array(c))
  np.testing.assert_allclose([float(got[0]), float(got[1])], [ev, evdot], atol=1e-10)


def test_recursions_match_neural_tangents_kernels(x64):
  ref = np.load(FIXTURE)
  kw = dict(depth=int(ref['depth']), sigma_w=float(ref['sigma_w']), sigma_b=float(ref['sigma_b']))
  for act in ('relu', 'erf'):
    ours = {'mlp': kernels.mlp_kernels(jnp.asarray(ref['x_mlp']), activation=act, **kw)}
    for readout in ('gap', 'flatten'):
      ours[f'cnn_{readout}'] = kernels.cnn_kernels(jnp.asarray(ref['x_cnn']), activation=act, readout=readout,
                                                   filter_size=int(ref['filter_size']), **kw)
    for name, k in ours.items():
      arch, *readout = name.split('_')
      key = '_'.join([arch, act] + readout)
      for kind in ('nngp', 'ntk'):
        np.testing.assert_allclose(np.asarray(k[kind]), ref[f'{key}_{kind}'], atol=1e-6, rtol=0, err_msg=key)
  gap, flat = ref['cnn_relu_gap_nngp'], ref['cnn_relu_flatten_nngp']
  assert np.abs(gap - flat).max() > 0.1  # the two readouts are different kernels


@pytest.mark.parametrize('activation', ['relu', 'erf'])
def test_one_hidden_layer_kernels_are_exact_in_expectation_at_any_width(x64, activation):
  # With one hidden layer the preactivations are exactly Gaussian: E[NNGP_emp] = Sigma^2, E[NTK_emp] = Theta^2.
  kw = dict(depth=1, activation=activation, sigma_w=1.3, sigma_b=0.2)
  net = kernels.mlp_network(6, **kw)
  x = jax.random.normal(jax.random.key(3), (4, 6))
  samples = 3000
  emp = jax.jit(jax.vmap(lambda key: kernels.empirical_kernels(net, x, 8, key)))(
      jax.random.split(jax.random.key(0), samples))
  inf = kernels.mlp_kernels(x, **kw)
  for kind in ('nngp', 'ntk'):
    mean, se = np.asarray(emp[kind].mean(0)), np.asarray(emp[kind].std(0)) / np.sqrt(samples)
    assert np.all(np.abs(mean - np.asarray(inf[kind])) < 4.5 * se + 1e-12), kind
  assert emp['ntk'].dtype == jnp.float64


@pytest.mark.parametrize('name', ['rnn_erf', pytest.param('cnn_relu', marks=pytest.mark.slow)])
def test_finite_networks_approach_the_recursion(name):
  # the RNN shares W across time (neural-tangents has no such layer to compare with); the CNN's recursion is
  # checked against neural-tangents above, its finite networks here only in the slow suite
  res = kernels.width_sweep(name, widths=(16, 128), seeds=3, num_inputs=3)
  for kind in ('nngp', 'ntk'):  # width^{-1/2} predicts a ratio of 0.35
    assert res[f'{kind}_rms'][-1] < 0.6 * res[f'{kind}_rms'][0], kind
    assert -0.85 < res[f'{kind}_slope'] < -0.2, (kind, res[f'{kind}_slope'])


def test_rnn_with_one_step_is_a_one_layer_network(x64):
  # T = 1: NNGP = sigma_v^2 V(sigma_u^2 x x'/d + sigma_b^2), NTK adds Vdot times that covariance.
  x = jax.random.normal(jax.random.key(1), (3, 1, 4))
  k = kernels.rnn_kernels(x, activation='relu', sigma_w=0.7, sigma_u=1.1, sigma_b=0.3, sigma_v=0.9)
  p = 1.1 ** 2 * x[:, 0] @ x[:, 0].T / 4 + 0.3 ** 2
  v, vdot = kernels.dual_matrix('relu', p)
  np.testing.assert_allclose(k['nngp'], 0.81 * v, rtol=1e-12)
  np.testing.assert_allclose(k['ntk'], 0.81 * v + 0.81 * vdot * p, rtol=1e-12)


def test_bad_arguments_name_the_function():
  with pytest.raises(ValueError, match='mlp_kernels: activation'):
    kernels.mlp_kernels(jnp.ones((2, 2)), activation='tanh')
  with pytest.raises(ValueError, match='cnn_kernels: filter_size'):
    kernels.cnn_kernels(jnp.ones((2, 4, 1)), filter_size=2)
  with pytest.raises(ValueError, match='ratio'):
    kernels.mp_cdf(1.0, 2.0)


@pytest.mark.parametrize('ratio', [0.1, 0.5, 1.0])
def test_closed_form_cdfs_integrate_the_densities(ratio):
  a, b = (1 - ratio ** 0.5) ** 2, (1 + ratio ** 0.5) ** 2
  for x in np.linspace(a, b, 7)[1:-1]:
    quad = scipy.integrate.quad(lambda t: kernels.mp_density(t, ratio), a, x, limit=200)[0]
    np.testing.assert_allclose(kernels.mp_cdf(x, ratio), quad, atol=1e-8)
  for x in (-1.5, 0.3, 1.9):
    quad = scipy.integrate.quad(kernels.semicircle_density, -2, x)[0]
    np.testing.assert_allclose(kernels.semicircle_cdf(x), quad, atol=1e-10)
  np.testing.assert_allclose(kernels.mp_cdf(b, ratio), 1.0, atol=1e-12)


def test_sampled_spectra_follow_the_semicircle_and_marchenko_pastur_laws():
  res = kernels.spectrum_check(sizes=(100, 400), ratio=0.25, seeds=2)
  assert res['ks_wigner'][-1].max() < 0.02 and res['ks_wishart'][-1].max() < 0.02
  assert res['ks_wigner'][-1].mean() < res['ks_wigner'][0].mean()
  np.testing.assert_allclose(res['moments_wigner'], res['catalan'], rtol=0.05)
  np.testing.assert_allclose(res['moments_wishart'], res['narayana'], rtol=0.05)
  # the test can fail: a Wishart spectrum is far from the MP law of another ratio
  assert kernels.ks_distance(kernels.wishart_spectrum(400, 0.25), lambda x: kernels.mp_cdf(x, 0.5)) > 0.1
  assert [kernels.catalan(k) for k in range(1, 5)] == [1, 2, 5, 14]
  assert kernels.mp_moment(3, 0.5) == pytest.approx(1 + 3 * 0.5 + 0.25)
