"""SPSA: exact for quadratics along the direction, and unbiased (Monte Carlo with a stated tolerance)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optim.primitives import spsa as zo


def _quadratic():
  a = jnp.array([[3.0, 0.5, 0.0, 0.2], [0.5, 2.0, 0.1, 0.0], [0.0, 0.1, 1.0, 0.3], [0.2, 0.0, 0.3, 0.5]])
  b = jnp.array([1.0, -1.0, 0.5, 2.0])
  loss = lambda p: 0.5 * p['x'] @ a @ p['x'] + b @ p['x'] + 0.5 * p['y'] ** 2
  params = {'x': jnp.array([0.3, -0.2, 1.0, 0.5]), 'y': jnp.asarray(-1.5)}
  grad = {'x': a @ params['x'] + b, 'y': params['y']}
  return loss, params, grad


def test_projected_gradient_is_the_directional_derivative_for_a_quadratic(x64):
  loss, params, grad = _quadratic()
  params = jax.tree.map(lambda v: v.astype(jnp.float64), params)
  z = {'x': jnp.array([0.5, -1.0, 2.0, 0.0]), 'y': jnp.asarray(3.0)}
  for eps in (1e-3, 0.1, 1.0):  # the central difference of a quadratic has no error term
    p = zo.spsa_projected_gradient(loss, params, z, eps)
    want = float(z['x'] @ grad['x'] + z['y'] * grad['y'])
    assert float(p) == pytest.approx(want, rel=1e-6)


def test_spsa_gradient_is_unbiased_for_a_quadratic():
  """E[p z] = E[z z^T] grad = grad. With M samples each coordinate's standard error is
  sqrt((|g|^2 + g_j^2) / M) (Gaussian z: Var(z.g z_j) = |g|^2 + g_j^2); we allow 5 of them."""
  loss, params, grad = _quadratic()
  m = 20000
  est, ps = jax.jit(lambda k: zo.spsa_gradient(loss, params, k, epsilon=1e-2, num_samples=m))(jax.random.key(0))
  g = np.concatenate([np.asarray(grad['x']), [float(grad['y'])]])
  se = np.sqrt((g @ g + g ** 2) / m)
  got = np.concatenate([np.asarray(est['x']), [float(est['y'])]])
  assert np.all(np.abs(got - g) < 5 * se), (got, g, se)
  assert ps.shape == (m,)
  # The directions are N(0, I): the projected gradients have variance |g|^2.
  assert float(np.var(np.asarray(ps))) == pytest.approx(g @ g, rel=0.05)


def test_bad_input():
  loss, params, _ = _quadratic()
  with pytest.raises(ValueError, match='epsilon'):
    zo.spsa_projected_gradient(loss, params, params, 0.0)
  with pytest.raises(ValueError, match='num_samples'):
    zo.spsa_gradient(loss, params, jax.random.key(0), num_samples=0)
  with pytest.raises(ValueError, match='tree structure'):
    zo.spsa_projected_gradient(loss, params, {'x': params['x']}, 0.1)
