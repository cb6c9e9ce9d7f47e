"""SGLD noise, the sphere projection and the sgld chain: first steps by hand, noise variance, stationary law."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optim
from optim.optimizers import langevin


def _noise(seed, step, tree):
  # The contract: step t draws leaf i from fold_in(fold_in(key(seed), t), i).
  key = jax.random.fold_in(jax.random.key(seed), step)
  leaves, treedef = jax.tree.flatten(tree)
  return treedef.unflatten([jax.random.normal(jax.random.fold_in(key, i), x.shape, jnp.float32)
                            for i, x in enumerate(leaves)])


def test_first_two_steps_by_hand():
  eta, beta, seed = 0.05, 7.0, 3
  params = {'a': jnp.array([1.0, -2.0, 0.5]), 'b': jnp.ones((2, 2))}
  grads = jax.tree.map(lambda x: 0.3 * x + 1.0, params)
  tx = optim.sgld(eta, beta=beta, seed=seed)
  state = tx.init(params)
  for t in range(2):
    updates, state = tx.update(grads, state, params)
    xi = _noise(seed, t, params)
    want = jax.tree.map(lambda g, z: -eta * g + math.sqrt(2 * eta / beta) * z, grads, xi)
    jax.tree.map(lambda u, w: np.testing.assert_allclose(u, w, rtol=1e-6, atol=1e-7), updates, want)


def test_noise_variance_is_2_eta_over_beta_by_monte_carlo():
  eta, beta, d, steps = 0.02, 3.0, 64, 400
  tx = optim.sgld(eta, beta=beta)
  zeros = jnp.zeros(d)

  def body(state, _):
    u, state = tx.update(zeros, state, zeros)
    return state, u

  _, u = jax.lax.scan(body, tx.init(zeros), None, length=steps)
  u = np.asarray(u, np.float64).ravel()
  want = 2 * eta / beta
  # Sample variance of N iid normals: relative standard error sqrt(2 / N).
  assert abs(u.var() / want - 1) < 4 * math.sqrt(2 / u.size)
  assert abs(u.mean()) < 4 * math.sqrt(want / u.size)
  # Fresh noise every step (fold_in(key, count)), not the same draw repeated.
  u = u.reshape(steps, d)
  assert abs(np.corrcoef(u[:-1].ravel(), u[1:].ravel())[0, 1]) < 4 / math.sqrt(u.size)


def test_stationary_variance_of_a_quadratic_is_the_exact_ar1_value(x64):
  # L = x^2 / 2: x' = (1 - eta) x + sqrt(2 eta / beta) xi, stationary variance 2 / (beta (2 - eta)) -> 1/beta.
  eta, beta, chains, steps = 0.1, 4.0, 2000, 200
  tx = optim.sgld(eta, beta=beta)
  x0 = jnp.zeros(chains)

  def body(carry, _):
    x, state = carry
    u, state = tx.update(x, state, x)
    return (x + u, state), None

  (x, _), _ = jax.lax.scan(body, (x0, tx.init(x0)), None, length=steps)
  want = 2 / (beta * (2 - eta))
  assert abs(float(jnp.var(x)) / want - 1) < 4 * math.sqrt(2 / chains)


def test_sphere_step_by_hand_and_stays_on_sphere():
  theta = jnp.array([0.6, 0.8, 0.0])
  g = jnp.array([1.0, -1.0, 2.0])
  eta = 0.1
  tx = optim.sgld(eta, beta=math.inf, sphere_radius=2.0)  # no noise: a projected Riemannian gradient step
  u, _ = tx.update(g, tx.init(theta), theta)
  step = -eta * g
  step = step - jnp.dot(step, theta) / jnp.dot(theta, theta) * theta
  want = 2.0 * (theta + step) / jnp.linalg.norm(theta + step)
  np.testing.assert_allclose(theta + u, want, rtol=1e-6)
  noisy = optim.sgld(eta, beta=1.0, sphere_radius=1.0, seed=1)
  x = theta
  state = noisy.init(x)
  for _ in range(5):
    u, state = noisy.update(g, state, x)
    x = optax.apply_updates(x, u)
    assert abs(float(jnp.linalg.norm(x)) - 1.0) < 1e-5


def test_noise_follows_a_schedule_and_vanishes_with_lr():
  sched = lambda t: jnp.where(t == 0, 0.0, 0.5)
  tx = optim.sgld(sched, beta=1.0)
  params = jnp.ones(4)
  state = tx.init(params)
  u0, state = tx.update(jnp.zeros(4), state, params)
  u1, state = tx.update(jnp.zeros(4), state, params)
  np.testing.assert_array_equal(u0, 0.0)
  np.testing.assert_allclose(u1, _noise(0, 1, params), rtol=1e-6)  # sqrt(2 * 0.5 / 1) = 1


def test_bf16_stays_bf16_and_jit():
  params = jnp.ones(8, jnp.bfloat16)
  tx = optim.sgld(0.1, beta=10.0, sphere_radius=1.0)
  u, _ = jax.jit(tx.update)(params, tx.init(params), params)
  assert u.dtype == jnp.bfloat16


@pytest.mark.parametrize('kwargs, name', [({'beta': 0.0}, 'beta'), ({'beta': -1.0}, 'beta'),
                                          ({'learning_rate': -0.1}, 'learning_rate'),
                                          ({'sphere_radius': 0.0}, 'radius')])
def test_bad_hyperparameters_are_named(kwargs, name):
  with pytest.raises(ValueError, match=name):
    optim.sgld(**{'learning_rate': 0.1, **kwargs})


def test_projection_needs_params():
  tx = langevin.project_to_sphere()
  with pytest.raises(ValueError, match='params'):
    tx.update(jnp.ones(3), tx.init(jnp.ones(3)))
