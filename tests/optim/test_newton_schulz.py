"""Newton-Schulz orthogonalisation, inverse square roots and whitening against numpy's SVD and eigh."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optim.primitives import newton_schulz as ns


def _matrix(m, n, s_min=0.05, seed=0):
  """U diag(s) V^T with singular values spread log-uniformly in [s_min, 1]."""
  rng = np.random.default_rng(seed)
  k = min(m, n)
  u, _ = np.linalg.qr(rng.normal(size=(m, k)))
  v, _ = np.linalg.qr(rng.normal(size=(n, k)))
  return (u * np.geomspace(1.0, s_min, k)) @ v.T


def _polar(x):
  u, _, vt = np.linalg.svd(x, full_matrices=False)
  return u @ vt


@functools.partial(jax.jit, static_argnames=('num_steps', 'coeffs'))
def _orthogonalize(x, num_steps=None, coeffs='cubic'):
  return ns.orthogonalize(x, num_steps, coeffs)


@pytest.mark.parametrize('shape', [(12, 20), (20, 12)])
def test_cubic_converges_to_polar_factor(x64, shape):
  x = _matrix(*shape)
  np.testing.assert_allclose(np.asarray(_orthogonalize(x, 40)), _polar(x), atol=1e-10)


def test_quintic_maps_singular_values_by_its_scalar_polynomial(x64):
  x = _matrix(12, 20, s_min=0.02, seed=1)
  out = np.asarray(_orthogonalize(x, 5, 'quintic'))
  u, s, vt = np.linalg.svd(x, full_matrices=False)
  # Closed form: singular vectors are kept; each normalised singular value goes through p(s) five times.
  a, b, c = ns.MUON_QUINTIC_COEFFS
  t = s / (np.linalg.norm(x) + 1e-8)
  for _ in range(5):
    t = a * t + b * t ** 3 + c * t ** 5
  np.testing.assert_allclose(out, (u * t) @ vt, atol=1e-10)
  # Muon's band: not U V^T, but every singular value near one.
  assert 0.6 < t.min() and t.max() < 1.25
  assert np.abs(out - _polar(x)).max() > 1e-3


def test_quintic_matches_optax_muon_convention(x64):
  muon = pytest.importorskip('optax.contrib._muon')
  for shape in [(12, 20), (20, 12)]:
    x = _matrix(*shape, seed=2)
    expected = muon.orthogonalize_via_newton_schulz(jnp.asarray(x), jnp.asarray(ns.MUON_QUINTIC_COEFFS), 5)
    np.testing.assert_allclose(np.asarray(_orthogonalize(x, 5, 'quintic')), np.asarray(expected), atol=1e-12)


def test_batch_axes_match_per_matrix_results(x64):
  x = np.stack([_matrix(6, 9, seed=s) for s in range(3)]).reshape(3, 1, 6, 9)
  out = np.asarray(_orthogonalize(x, 40))
  for i in range(3):
    np.testing.assert_allclose(out[i, 0], _polar(x[i, 0]), atol=1e-10)
  whitened = np.asarray(jax.jit(ns.whiten)(x))
  np.testing.assert_allclose(whitened, out, atol=1e-10)


def _spd(n, condition, seed):
  q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
  return (q * np.geomspace(condition, 1.0, n)) @ q.T


def test_inverse_sqrt_matches_eigh(x64):
  a = _spd(8, 100.0, seed=3)
  w, q = np.linalg.eigh(a)
  root, inv_root = map(np.asarray, jax.jit(functools.partial(ns.sqrt_and_inverse_sqrt, num_steps=40))(a))
  np.testing.assert_allclose(inv_root, (q / np.sqrt(w)) @ q.T, atol=1e-10)
  np.testing.assert_allclose(root @ root, a, atol=1e-9)
  np.testing.assert_allclose(root @ inv_root, np.eye(8), atol=1e-10)
  ridge = np.asarray(jax.jit(functools.partial(ns.inverse_sqrt, num_steps=40, ridge=0.5))(a))
  np.testing.assert_allclose(ridge, (q / np.sqrt(w + 0.5)) @ q.T, atol=1e-10)


@pytest.mark.parametrize('shape', [(6, 10), (10, 6)])
def test_whiten_is_gram_inverse_sqrt_times_g(x64, shape):
  g = _matrix(*shape, s_min=0.2, seed=4)
  out = np.asarray(jax.jit(ns.whiten)(g))
  if shape[0] <= shape[1]:
    w, q = np.linalg.eigh(g @ g.T)
    expected = (q / np.sqrt(w)) @ q.T @ g  # SWAN: (G G^T)^{-1/2} G
  else:
    w, q = np.linalg.eigh(g.T @ g)
    expected = g @ (q / np.sqrt(w)) @ q.T
  np.testing.assert_allclose(out, expected, atol=1e-10)
  np.testing.assert_allclose(out, _polar(g), atol=1e-10)  # both equal U V^T


def test_zero_matrix_stays_finite(x64):
  assert np.all(np.asarray(_orthogonalize(np.zeros((3, 4)), 5, 'quintic')) == 0.0)


def test_primitives_under_jit_on_pytree(x64):
  tree = {'a': _matrix(4, 7, seed=5), 'b': _matrix(9, 3, seed=6), 'c': _matrix(5, 5, seed=7)[None]}

  @jax.jit
  def run(tree):
    return (jax.tree.map(lambda x: ns.orthogonalize(x, 40), tree), jax.tree.map(ns.whiten, tree),
            jax.tree.map(lambda x: ns.inverse_sqrt(x @ jnp.swapaxes(x, -1, -2), 60), tree))

  orth, white, inv = jax.tree.map(np.asarray, run(tree))
  for name, x in tree.items():
    np.testing.assert_allclose(orth[name], _polar(x), atol=1e-9)
    np.testing.assert_allclose(white[name], _polar(x), atol=1e-9)
  assert inv['c'].shape == (1, 5, 5)
  np.testing.assert_allclose(inv['a'] @ tree['a'], _polar(tree['a']), atol=1e-9)


def test_bad_coefficients_raise():
  with pytest.raises(ValueError, match='coeffs'):
    ns.orthogonalize(jnp.ones((2, 3)), coeffs='septic')
  with pytest.raises(ValueError, match='coeffs'):
    ns.orthogonalize(jnp.ones((2, 3)), 3, coeffs=(1.0, 2.0))


@pytest.mark.parametrize('shape', [(4, 4), (3, 5), (6, 2), (2, 3, 3)])
def test_zero_matrix_gives_zero_not_nan(shape):
  zero = jnp.zeros(shape)
  np.testing.assert_array_equal(ns.whiten(zero), zero)
  square = jnp.zeros(shape[:-1] + (shape[-2],))
  s, inv = ns.sqrt_and_inverse_sqrt(square)
  np.testing.assert_array_equal(s, square)
  np.testing.assert_array_equal(inv, square)
  np.testing.assert_array_equal(ns.inverse_sqrt(square), square)
  np.testing.assert_array_equal(ns.orthogonalize(zero), zero)
