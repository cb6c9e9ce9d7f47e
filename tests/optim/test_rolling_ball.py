"""Rolling Ball Optimizer: steps by hand, the gradient-descent limits, the authors' trajectory, digits.

Fixture (tests/optim/fixtures/README.md): ``rolling_ball_official.npz`` from the authors' JAX
``ball_trajectory`` in float64.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import digits
from optim import rolling_ball
from optim.optimizers.rolling_ball import scale_by_rolling_ball

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures')
C = np.array([0.3, -1.0, 2.0])


def _loss(p):
  return jnp.sum(jnp.log(jnp.cosh(p - C))) + 0.1 * jnp.sum(p ** 2)


def _np_loss_and_grad(p):
  return np.sum(np.log(np.cosh(p - C))) + 0.1 * np.sum(p ** 2), np.tanh(p - C) + 0.2 * p


def _step(tx, params, state):
  return tx.update(jax.grad(_loss)(params), state, params, value_and_grad_fn=jax.value_and_grad(_loss))


def test_first_steps_by_hand(x64):
  lr, radius, proj_step, k = 0.4, 0.3, 0.2, 6
  tx = rolling_ball(lr, radius=radius, projection_step_size=proj_step, num_projection_steps=k)
  params = jnp.array([1.0, 0.5, -1.5])
  state = tx.init(params)
  step = jax.jit(lambda p, s: _step(tx, p, s))
  theta = np.asarray(params)
  for t in range(1, 5):
    updates, state = step(params, state)
    params = optax.apply_updates(params, updates)
    f, g = _np_loss_and_grad(theta)
    normal = np.append(-g, 1.0) / np.sqrt(g @ g + 1)
    centre = np.append(theta, f) + radius * normal
    target = centre - lr * np.append(g, g @ g)
    x = theta.copy()
    for _ in range(k):
      fx, gx = _np_loss_and_grad(x)
      x = x - proj_step * ((x - target[:-1]) + (fx - target[-1]) * gx)
    theta = x
    np.testing.assert_allclose(params, theta, rtol=1e-12, err_msg=f'step {t}')


@pytest.mark.parametrize('radius', [0.0, 0.3, 2.0])
def test_is_gradient_descent_on_a_linear_loss_for_every_radius(x64, radius):
  # The graph is a hyperplane: the ball's centre stays at distance rho, the move (g, |g|^2) is tangent, and the
  # foot point of c' is theta - eta g; one projection step of size 1 / (1 + |a|^2) lands on it exactly.
  a = jnp.array([0.5, -2.0, 1.0])
  loss = lambda p: a @ p + 3.0
  tx = scale_by_rolling_ball(0.7, radius=radius, projection_step_size=1 / (1 + float(a @ a)),
                             num_projection_steps=5)
  params = jnp.array([1.0, 2.0, 3.0])
  direction, _ = tx.update(a, tx.init(params), params, value_and_grad_fn=jax.value_and_grad(loss))
  np.testing.assert_allclose(direction, a, rtol=1e-12)


def _converged_move(lr, radius, params):
  tx = scale_by_rolling_ball(lr, radius=radius, projection_step_size=0.3, num_projection_steps=300)
  direction, _ = jax.jit(lambda p: _step(tx, p, tx.init(p)))(params)
  return lr * direction  # theta - theta'


def test_reduces_to_gradient_descent_as_the_radius_goes_to_zero(x64):
  params = jnp.array([1.0, 0.5, -1.5])
  g = jax.grad(_loss)(params)
  # rho = 0: the exact foot point of (theta - eta g, L - eta |g|^2) is theta - eta g + O(eta^2).
  errors = [np.linalg.norm(_converged_move(lr, 0.0, params) - lr * g) for lr in (0.02, 0.01, 0.005)]
  assert 3.5 < errors[0] / errors[1] < 4.5 and 3.5 < errors[1] / errors[2] < 4.5, errors
  # The move is continuous in rho at 0 ...
  at_zero = _converged_move(0.05, 0.0, params)
  assert np.linalg.norm(_converged_move(0.05, 1e-7, params) - at_zero) < 1e-6 * np.linalg.norm(at_zero)
  # ... while a finite ball sees the landscape at its own scale: the step is no longer gradient descent.
  assert np.linalg.norm(_converged_move(0.05, 1.0, params) - at_zero) > 0.05 * np.linalg.norm(at_zero)


def test_matches_the_authors_ball_trajectory(x64):
  d = np.load(os.path.join(FIXTURES, 'rolling_ball_official.npz'))
  names = ('w1', 'b1', 'w2', 'b2')
  params = {n: jnp.asarray(d['init_' + n]) for n in names}
  x, y = jnp.asarray(d['x']), jnp.asarray(d['y'])

  def loss(p):
    logits = jnp.tanh(x @ p['w1'] + p['b1']) @ p['w2'] + p['b2']
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  tx = rolling_ball(float(d['lr']), radius=float(d['radius']), projection_step_size=float(d['projection_step_size']),
                    num_projection_steps=int(d['num_projection_steps']))

  @jax.jit
  def step(params, state):
    updates, state = tx.update(jax.grad(loss)(params), state, params, value_and_grad_fn=jax.value_and_grad(loss))
    return optax.apply_updates(params, updates), state

  state = tx.init(params)
  for t in range(d['traj_w1'].shape[0]):
    params, state = step(params, state)
    for n in names:
      want = d['traj_' + n][t]
      np.testing.assert_allclose(params[n], want, rtol=0, atol=1e-10 * np.max(np.abs(want)),
                                 err_msg=f'step {t + 1}, {n}')


@pytest.mark.parametrize('kwargs, name', [({'radius': -0.1}, 'radius'), ({'projection_step_size': 0.0},
                                                                         'projection_step_size'),
                                          ({'num_projection_steps': 0}, 'num_projection_steps'),
                                          ({'learning_rate': float('nan')}, 'learning_rate')])
def test_bad_hyperparameters_are_named(kwargs, name):
  with pytest.raises(ValueError, match=name):
    rolling_ball(**{'learning_rate': 0.1, **kwargs})


def test_needs_value_and_grad_fn():
  tx = rolling_ball(0.1)
  params = jnp.ones(2)
  with pytest.raises(ValueError, match='value_and_grad_fn'):
    tx.update(params, tx.init(params), params)


def test_trains_an_mlp_on_digits():
  tx = rolling_ball(1.0, radius=0.5, projection_step_size=0.03, num_projection_steps=10)
  fit = digits.fit(tx, oracles=lambda loss_fn, **_: {'value_and_grad_fn': jax.value_and_grad(loss_fn)})
  assert fit.train_loss < 0.3
  assert fit.test_accuracy > 0.9
