"""SWAN: the paper's equations by hand, exact whitening, statelessness, the matrix fallback, digits."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import digits
from optim import scale_by_swan, swan
from optim.optimizers.swan import grad_norm


def _problem(rng):
  """Least squares ``0.5 ||X W + b - Y||^2`` (flax layout, ``W`` is (in, out))."""
  x, y = rng.standard_normal((8, 5)), rng.standard_normal((8, 3))
  params = {'w': rng.standard_normal((5, 3)), 'b': rng.standard_normal(3)}

  def grads(p):
    r = x @ p['w'] + p['b'] - y
    return {'w': x.T @ r, 'b': r.sum(0)}

  return params, grads


def _swan_by_hand(g, eps=1e-8):
  """The paper's SWAN step for one leaf, in numpy with an exact SVD."""
  if g.ndim < 2:
    return g / (np.sqrt(np.mean(g ** 2)) + eps)
  centred = g - g.mean(0, keepdims=True)  # GradNorm over fan-in: each output unit across its inputs
  normalised = centred / (np.sqrt(np.mean(centred ** 2, 0, keepdims=True)) + eps)
  u, _, vt = np.linalg.svd(normalised, full_matrices=False)
  white = u @ vt  # (G G^T)^{-1/2} G for full rank
  return white * np.linalg.norm(normalised) / np.linalg.norm(white)


def test_first_steps_by_hand(x64):
  rng = np.random.default_rng(0)
  params, grads = _problem(rng)
  lr = 0.1
  tx = swan(lr, ns_steps=40)
  state = tx.init(params)
  ours = jax.tree.map(jnp.asarray, params)
  hand = params
  for _ in range(3):
    updates, state = tx.update(jax.tree.map(jnp.asarray, grads(jax.tree.map(np.asarray, ours))), state, ours)
    ours = optax.apply_updates(ours, updates)
    hand = {k: v - lr * _swan_by_hand(grads(hand)[k]) for k, v in hand.items()}
    for k in hand:
      np.testing.assert_allclose(np.asarray(ours[k]), hand[k], rtol=1e-10, atol=1e-12)


def test_whitening_is_the_exact_inverse_square_root(x64):
  rng = np.random.default_rng(1)
  g = rng.standard_normal((7, 12)) * np.linspace(0.1, 3, 12)  # wide, unequal scales
  tx = scale_by_swan(ns_steps=60, norm_axis='fan_out', rescale=False)
  ours, _ = tx.update({'w': jnp.asarray(g)}, tx.init({'w': g}))
  centred = g - g.mean(1, keepdims=True)  # fan_out: each row (input) across its outputs
  normalised = centred / np.sqrt(np.mean(centred ** 2, 1, keepdims=True))
  evals, evecs = np.linalg.eigh(normalised @ normalised.T)
  exact = evecs @ np.diag(evals ** -0.5) @ evecs.T @ normalised
  np.testing.assert_allclose(np.asarray(ours['w']), exact, atol=1e-9)
  u, _, vt = np.linalg.svd(normalised, full_matrices=False)
  np.testing.assert_allclose(exact, u @ vt, atol=1e-9)  # the polar factor


def test_default_steps_approximate_the_polar_factor():
  # Ten iterations (the default) on a realistic 64x32 gradient: close to U V^T, not exact.
  rng = np.random.default_rng(2)
  g = rng.standard_normal((64, 32)) @ np.diag(np.geomspace(1, 30, 32))
  ours, _ = scale_by_swan(rescale=False).update({'w': jnp.asarray(g, jnp.float32)}, optax.EmptyState())
  u, _, vt = np.linalg.svd(np.asarray(grad_norm(jnp.asarray(g, jnp.float32))), full_matrices=False)
  assert np.linalg.norm(np.asarray(ours['w']) - u @ vt) / np.linalg.norm(u @ vt) < 0.05


def test_gradnorm_standardises_each_output_unit():
  g = jax.random.normal(jax.random.key(0), (10, 4)) * jnp.array([0.1, 1.0, 5.0, 30.0]) + 2.0
  out = grad_norm(g, axis=0)
  np.testing.assert_allclose(out.mean(0), 0, atol=1e-5)
  np.testing.assert_allclose(out.std(0), 1, atol=1e-5)


def test_holds_no_state_at_all():
  params = {'w': jnp.ones((4, 3)), 'conv': jnp.ones((3, 3, 2, 4)), 'b': jnp.ones(3), 's': jnp.asarray(1.0)}
  for tx in (swan(0.1), swan(0.1, weight_decay=0.1), scale_by_swan()):
    state = tx.init(params)
    grads = jax.tree.map(lambda p: p * 0.5 + 0.1, params)
    _, state = jax.jit(tx.update)(grads, state, params)
    assert jax.tree.leaves(state) == []


def test_conv_kernels_vectors_and_scalars():
  rng = np.random.default_rng(3)
  conv = rng.standard_normal((3, 3, 2, 4)).astype(np.float32)
  tx = scale_by_swan()
  out, _ = tx.update({'conv': jnp.asarray(conv), 's': jnp.asarray(-3.0), 'b': jnp.zeros(3)}, optax.EmptyState())
  matrix, _ = tx.update({'m': jnp.asarray(conv.reshape(18, 4))}, optax.EmptyState())
  np.testing.assert_allclose(out['conv'], np.asarray(matrix['m']).reshape(3, 3, 2, 4), rtol=1e-6)
  assert float(out['s']) == pytest.approx(-1.0)  # a scalar's RMS-normalised gradient is its sign
  np.testing.assert_array_equal(out['b'], 0)
  zero, _ = tx.update({'w': jnp.zeros((4, 3))}, optax.EmptyState())  # no 0/0 in the whitening
  np.testing.assert_array_equal(zero['w'], 0)


@pytest.mark.parametrize('kwargs, name', [({'ns_steps': 0}, 'ns_steps'), ({'norm_axis': 0}, 'norm_axis'),
                                          ({'eps': -1.0}, 'eps'), ({'weight_decay': -0.1}, 'weight_decay')])
def test_rejects_bad_hyperparameters(kwargs, name):
  with pytest.raises(ValueError, match=name):
    swan(0.1, **kwargs)


def test_trains_an_mlp_on_digits():
  fit = digits.fit(swan(1e-2))
  assert fit.train_loss < 0.1
  assert fit.test_accuracy > 0.93
