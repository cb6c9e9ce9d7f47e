"""Lanczos, SLQ and power iteration against numpy's eigh in float64."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from optim.primitives import curvature
from optim.primitives import spectral as lz


def _wishart(n, seed):
  x = np.random.default_rng(seed).normal(size=(2 * n, n))
  return x.T @ x / (2 * n)


def _rotated(spectrum, seed=0):
  q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(len(spectrum), len(spectrum))))
  return (q * spectrum) @ q.T


@functools.partial(jax.jit, static_argnames=('num_steps',))
def _lanczos_jit(a, key, num_steps):
  result = lz.lanczos(lambda v: a @ v, jnp.zeros(a.shape[0], a.dtype), key, num_steps, return_basis=True)
  values, vectors = lz.ritz(result)
  return result, values, vectors


def _lanczos_dense(a, key, num_steps):
  return jax.tree.map(np.asarray, _lanczos_jit(a, key, num_steps))


@pytest.mark.parametrize('n', [10, 15])
def test_ritz_values_equal_eigh_on_wishart(x64, n):
  a = _wishart(n, seed=n)
  result, values, vectors = _lanczos_dense(a, jax.random.key(0), n)
  np.testing.assert_allclose(values, np.linalg.eigvalsh(a), atol=1e-6)
  basis = np.asarray(result.basis)
  np.testing.assert_allclose(basis @ basis.T, np.eye(n), atol=1e-10)  # orthonormal Krylov basis
  t = np.diag(result.alphas) + np.diag(result.betas, 1) + np.diag(result.betas, -1)
  np.testing.assert_allclose(basis @ a @ basis.T, t, atol=1e-10)
  np.testing.assert_allclose(vectors @ a, values[:, None] * vectors, atol=1e-8)  # A u = theta u


@pytest.mark.parametrize('n, num_steps', [(80, 80), (400, 60)])
def test_blocked_reorthogonalisation_keeps_basis_orthonormal(x64, n, num_steps):
  # Reorthogonalisation reads the basis in blocks chosen per step (8 sizes here); every block boundary is crossed.
  spectrum = np.concatenate([[50.0, 40.0, 30.0, 20.0, 10.0], np.random.default_rng(n).uniform(0.0, 1.0, n - 5)])
  a = _rotated(spectrum, seed=n)
  result, values, _ = _lanczos_dense(a, jax.random.key(3), num_steps)
  basis = np.asarray(result.basis)
  np.testing.assert_allclose(basis @ basis.T, np.eye(num_steps), atol=1e-10)
  exact = np.linalg.eigvalsh(a)
  if num_steps == n:
    np.testing.assert_allclose(values, exact, atol=1e-9)
  else:  # the well-separated top of the spectrum has converged
    np.testing.assert_allclose(values[-5:], exact[-5:], rtol=1e-10)


def test_ritz_values_recover_repeated_eigenvalues(x64):
  # Multiplicities make the Krylov space invariant early; the restart must still find every eigenvalue.
  spectrum = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 5.0, 6.0])
  _, values, _ = _lanczos_dense(_rotated(spectrum), jax.random.key(1), 10)
  np.testing.assert_allclose(values, spectrum, atol=1e-8)


def _net_params(seed):
  rng = np.random.default_rng(seed)
  return {'w1': rng.normal(size=(3, 5)), 'b1': 0.1 * rng.normal(size=5), 'w2': rng.normal(size=(5, 1))}


def _net_loss(params, x, y):
  return jnp.mean((jnp.tanh(x @ params['w1'] + params['b1']) @ params['w2'] - y) ** 2)


def test_ritz_values_equal_eigh_on_neural_net_hessian(x64):
  rng = np.random.default_rng(0)
  x, y, params = rng.normal(size=(16, 3)), rng.normal(size=(16, 1)), _net_params(1)
  dim = ravel_pytree(params)[0].size

  @jax.jit
  def run(params):
    mv = curvature.hessian_matvec(_net_loss, params, x, y)
    values, vectors = lz.ritz(lz.lanczos(mv, params, jax.random.key(2), dim, return_basis=True))
    return values, vectors, curvature.dense_matrix(mv, params)

  values, vectors, h = jax.tree.map(np.asarray, run(params))
  np.testing.assert_allclose(values, np.linalg.eigvalsh(h), atol=1e-6)
  assert jax.tree.structure(jax.tree.map(lambda v: v[0], vectors)) == jax.tree.structure(params)
  assert vectors['w1'].shape == (dim, 3, 5)


def test_gauss_quadrature_is_exact_to_degree_2m_minus_1(x64):
  a = _wishart(30, seed=3)
  m = 5
  v0 = np.random.default_rng(4).normal(size=30)
  v0 /= np.linalg.norm(v0)
  result = jax.jit(lambda a, v0: lz.lanczos(lambda v: a @ v, v0, jax.random.key(0), m, v0=v0))(a, v0)
  t = np.diag(result.alphas) + np.diag(result.betas, 1) + np.diag(result.betas, -1)
  nodes, s = np.linalg.eigh(t)
  weights = s[0] ** 2
  for p in range(2 * m):
    np.testing.assert_allclose(np.sum(weights * nodes ** p), v0 @ np.linalg.matrix_power(a, p) @ v0, rtol=1e-8)
  # Degree 2m is no longer exact in general (the test could fail).
  assert abs(np.sum(weights * nodes ** (2 * m)) - v0 @ np.linalg.matrix_power(a, 2 * m) @ v0) > 1e-8


@functools.partial(jax.jit, static_argnames=('num_steps', 'num_probes'))
def _slq_jit(a, keys, grid, num_steps, num_probes):
  def one(key):
    q = lz.slq(lambda v: a @ v, jnp.zeros(a.shape[0], a.dtype), key, num_steps, num_probes)
    return (q, lz.spectral_cdf(q, grid), lz.spectral_density(q, grid, sigma=0.05),
            lz.spectral_cdf(q, grid, sigma=0.05))
  return jax.vmap(one)(keys)


def _slq_runs(a, grid, num_steps, num_probes, seeds=3):
  """SLQ for several seeds at once (one compilation per setting), with CDFs and densities on ``grid``."""
  keys = jax.random.split(jax.random.key(0), seeds)
  return jax.tree.map(np.asarray, _slq_jit(a, keys, grid, num_steps, num_probes))


_SLQ_MATRIX = _wishart(80, seed=6)
_SLQ_EIGENVALUES = np.linalg.eigvalsh(_SLQ_MATRIX)
_SLQ_GRID = np.linspace(_SLQ_EIGENVALUES[0] - 1.0, _SLQ_EIGENVALUES[-1] + 1.0, 2001)


def test_slq_weights_sum_to_one_and_nodes_lie_in_spectrum(x64):
  q, _, density, smooth_cdf = _slq_runs(_SLQ_MATRIX, _SLQ_GRID, 10, 4)
  assert q.nodes.shape == q.weights.shape == (3, 4, 10)
  np.testing.assert_allclose(q.weights.sum(axis=-1), 1.0, atol=1e-12)
  assert (q.weights >= 0).all()
  assert q.nodes.min() >= _SLQ_EIGENVALUES[0] - 1e-10 and q.nodes.max() <= _SLQ_EIGENVALUES[-1] + 1e-10
  step = _SLQ_GRID[1] - _SLQ_GRID[0]
  np.testing.assert_allclose(np.sum(density, axis=-1) * step, 1.0, atol=1e-6)
  np.testing.assert_allclose(np.cumsum(density, axis=-1) * step, smooth_cdf, atol=2e-3)


def test_slq_cdf_distance_decreases_with_steps_and_probes(x64):
  exact = np.mean(_SLQ_EIGENVALUES[None, :] <= _SLQ_GRID[:, None], axis=1)
  w1, ks = [], []
  for num_steps, num_probes in [(3, 1), (10, 4), (40, 16)]:
    # Averaged over three seeds so the ordering is a property of the estimator, not of one draw.
    diff = np.abs(_slq_runs(_SLQ_MATRIX, _SLQ_GRID, num_steps, num_probes)[1] - exact)
    w1.append(np.mean(np.sum(diff, axis=-1) * (_SLQ_GRID[1] - _SLQ_GRID[0])))  # Wasserstein-1
    ks.append(np.mean(diff.max(axis=-1)))  # Kolmogorov
  assert w1[0] > w1[1] > w1[2] and ks[0] > ks[1] > ks[2]


def test_power_iteration_matches_eigh_with_spectral_gap(x64):
  spectrum = np.concatenate([[10.0, 7.0, 5.0, 3.0], np.linspace(0.0, 1.0, 36)])
  a = _rotated(spectrum, seed=7)
  values, vectors = jax.tree.map(np.asarray, jax.jit(lambda a: lz.power_iteration(
      lambda v: a @ v, jnp.zeros(40, a.dtype), jax.random.key(0), k=4, num_iters=150))(a))
  np.testing.assert_allclose(values, spectrum[:4], rtol=1e-10)
  w, u = np.linalg.eigh(a)
  for i in range(4):
    np.testing.assert_allclose(np.abs(vectors[i] @ u[:, -1 - i]), 1.0, atol=1e-8)


def test_lanczos_slq_power_under_jit_on_pytree(x64):
  spectrum = np.concatenate([[9.0, 6.0], np.linspace(0.1, 1.0, 9)])
  a = _rotated(spectrum, seed=8)
  params = {'w': jnp.zeros((2, 3)), 'b': jnp.zeros(4), 's': jnp.zeros(())}
  flat, unravel = ravel_pytree(params)
  matvec = lambda tree: unravel(a @ ravel_pytree(tree)[0])

  @jax.jit
  def run(params, key):
    values, vectors = lz.ritz(lz.lanczos(matvec, params, key, 11, return_basis=True))
    return values, vectors, lz.slq(matvec, params, key, 6, 3), lz.power_iteration(matvec, params, key, 2, 100)

  values, vectors, q, (top, top_vectors) = jax.tree.map(np.asarray, run(params, jax.random.key(1)))
  np.testing.assert_allclose(values, np.sort(spectrum), atol=1e-8)
  assert vectors['w'].shape == (11, 2, 3) and top_vectors['s'].shape == (2,)
  np.testing.assert_allclose(q.weights.sum(1), 1.0, atol=1e-12)
  np.testing.assert_allclose(top, [9.0, 6.0], rtol=1e-8)


def test_bad_num_steps_raises():
  with pytest.raises(ValueError, match='num_steps'):
    lz.lanczos(lambda v: v, jnp.zeros(3), jax.random.key(0), 4)
