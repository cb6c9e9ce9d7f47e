"""diffGrad: first steps from the paper's equations, the official v2 trajectory, the friction coefficient."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import torch_trajectories
from optim import diffgrad, scale_by_diffgrad

# A tiny quadratic: f(w) = 0.5 * sum(c * (w - t)^2), gradient c * (w - t).
C = np.array([[1.0, 3.0, 0.5], [2.0, 0.2, 4.0]])
T = np.array([[0.3, -1.0, 2.0], [0.0, 1.5, -0.7]])
W0 = np.array([[1.0, 0.5, -1.0], [-2.0, 0.1, 0.4]])


def test_first_steps_by_hand(x64):
  lr, b1, b2, eps, wd = 0.05, 0.9, 0.999, 1e-8, 0.01
  w, m, v, g_prev = W0.copy(), 0 * W0, 0 * W0, 0 * W0
  expected = []
  for t in range(1, 5):
    g = C * (w - T) + wd * w  # coupled L2, as the official code
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g ** 2
    xi = 1 / (1 + np.exp(-np.abs(g_prev - g)))
    g_prev = g
    w = w - lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * xi * m / (np.sqrt(v) + eps)
    expected.append(w)

  tx = diffgrad(learning_rate=lr, weight_decay=wd)
  params = jnp.asarray(W0)
  state = tx.init(params)
  for want in expected:
    updates, state = tx.update(jnp.asarray(C) * (params - jnp.asarray(T)), state, params)
    params = optax.apply_updates(params, updates)
    np.testing.assert_allclose(params, want, rtol=1e-13)


def test_matches_official_v2_trajectory(x64):
  init, grads, reference, hp = torch_trajectories.load('diffgrad')
  tx = diffgrad(learning_rate=hp['lr'], b1=hp['betas'][0], b2=hp['betas'][1], eps=hp['eps'],
                weight_decay=hp['weight_decay'])
  torch_trajectories.assert_trajectories_match(torch_trajectories.replay(tx, init, grads), reference)


def test_matches_pytorch_optimizer_with_eps_root(x64):
  # pytorch-optimizer's DiffGrad (weight_decouple=False): sqrt(v + 1e-15) + eps. A small difference (~4e-10
  # relative after 30 steps here), but the authors' default (no eps_root) misses it at 1e-10.
  init, grads, reference, hp = torch_trajectories.load('diffgrad_pytorch_optimizer')
  kwargs = dict(learning_rate=hp['lr'], b1=hp['betas'][0], b2=hp['betas'][1], eps=hp['eps'],
                weight_decay=hp['weight_decay'])
  ours = torch_trajectories.replay(diffgrad(**kwargs, eps_root=1e-15), init, grads)
  torch_trajectories.assert_trajectories_match(ours, reference)
  with pytest.raises(AssertionError):
    torch_trajectories.assert_trajectories_match(torch_trajectories.replay(diffgrad(**kwargs), init, grads), reference)


def test_constant_gradient_halves_adam_after_the_first_step(x64):
  # xi = sigmoid(|g_prev - g|): sigmoid(|g|) at step 1 (g_prev = 0), then exactly 1/2. With v1's aliasing bug
  # (g_prev always 0 after zero_grad) it would stay sigmoid(|g|); with eps = 0 the eps placements agree.
  g = jnp.array([0.5, -2.0, 3.0])
  ours, adam = scale_by_diffgrad(eps=0.0), optax.scale_by_adam(eps=0.0)
  s1, s2 = ours.init(g), adam.init(g)
  for t in range(4):
    u, s1 = ours.update(g, s1)
    a, s2 = adam.update(g, s2)
    factor = jax.nn.sigmoid(jnp.abs(g)) if t == 0 else 0.5
    np.testing.assert_allclose(u, factor * a, rtol=1e-12)
  np.testing.assert_array_equal(s1.prev_grad, g)


def test_mu_dtype_and_bf16():
  params = {'w': jnp.ones((3, 2), jnp.bfloat16), 'b': jnp.zeros(2, jnp.float32)}
  tx = diffgrad(1e-3, mu_dtype=jnp.bfloat16)
  state = tx.init(params)
  updates, state = tx.update(jax.tree.map(jnp.ones_like, params), state, params)
  assert updates['w'].dtype == jnp.bfloat16 and updates['b'].dtype == jnp.float32
  assert state[1].mu['b'].dtype == jnp.bfloat16


@pytest.mark.parametrize('kwargs, name', [({'b1': 1.0}, 'b1'), ({'b2': -0.1}, 'b2'), ({'eps': -1.0}, 'eps'),
                                          ({'weight_decay': float('nan')}, 'weight_decay'),
                                          ({'learning_rate': -1.0}, 'learning_rate')])
def test_bad_hyperparameters_are_named(kwargs, name):
  with pytest.raises(ValueError, match=name):
    diffgrad(**{'learning_rate': 1e-3, **kwargs})
