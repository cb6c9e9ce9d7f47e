"""AdaBelief: first steps from the equations (plain and rectified), the official trajectory, reuse of optax."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import torch_trajectories
from optim import adabelief, scale_by_adabelief

C = np.array([[1.0, 3.0, 0.5], [2.0, 0.2, 4.0]])
T = np.array([[0.3, -1.0, 2.0], [0.0, 1.5, -0.7]])
W0 = np.array([[1.0, 0.5, -1.0], [-2.0, 0.1, 0.4]])


def _by_hand(steps, lr, wd, decouple, rectify, b1=0.9, b2=0.999, eps=1e-16):
  """The paper's Algorithm 2 (with eps inside s, as the code), plus RAdam's rectification and weight decay."""
  w, m, s = W0.copy(), 0 * W0, 0 * W0
  rho_inf = 2 / (1 - b2) - 1
  out = []
  for t in range(1, steps + 1):
    g = C * (w - T)
    if not decouple:
      g = g + wd * w
    m = b1 * m + (1 - b1) * g
    s = b2 * s + (1 - b2) * (g - m) ** 2 + eps
    bc1, bc2 = 1 - b1 ** t, 1 - b2 ** t
    if not rectify:
      step = m / bc1 / (np.sqrt(s / bc2) + eps)
    else:
      rho = rho_inf - 2 * t * b2 ** t / bc2
      if rho >= 5:
        r = np.sqrt(bc2 * (rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
        step = r / bc1 * m / (np.sqrt(s) + eps)
      else:
        step = m / bc1
    w = w - lr * step - (lr * wd * w if decouple else 0)
    out.append(w)
  return out


def _run(tx, steps):
  params = jnp.asarray(W0)
  state = tx.init(params)
  out = []
  for _ in range(steps):
    updates, state = tx.update(jnp.asarray(C) * (params - jnp.asarray(T)), state, params)
    params = optax.apply_updates(params, updates)
    out.append(np.asarray(params))
  return out


@pytest.mark.parametrize('decouple, rectify', [(True, True), (False, False), (True, False)])
def test_first_steps_by_hand(x64, decouple, rectify):
  # 8 steps: with b2 = 0.999 the rectified update is a momentum step for t <= 5 (rho_t < 5), adaptive after.
  want = _by_hand(8, lr=0.05, wd=0.1, decouple=decouple, rectify=rectify)
  got = _run(adabelief(0.05, weight_decay=0.1, weight_decouple=decouple, rectify=rectify), 8)
  for t, (g, w) in enumerate(zip(got, want)):
    np.testing.assert_allclose(g, w, rtol=1e-12, err_msg=f'step {t + 1}')


@pytest.mark.parametrize('name', ['adabelief_rectified', 'adabelief_plain_l2'])
def test_matches_official_trajectory(x64, name):
  init, grads, reference, hp = torch_trajectories.load(name)
  tx = adabelief(hp['lr'], b1=hp['betas'][0], b2=hp['betas'][1], eps=hp['eps'], weight_decay=hp['weight_decay'],
                 weight_decouple=hp['weight_decouple'], rectify=hp['rectify'])
  torch_trajectories.assert_trajectories_match(torch_trajectories.replay(tx, init, grads), reference)


def test_unrectified_is_optax_adabelief(x64):
  # Without rectification the step is optax.adabelief's, expression for expression; only the rounding of
  # multiply-adds, which XLA contracts differently in differently fused loops, may differ.
  ours = _run(adabelief(1e-2, rectify=False), 5)
  theirs = _run(optax.adabelief(1e-2, eps=1e-16, eps_root=1e-16), 5)
  for a, b in zip(ours, theirs):
    np.testing.assert_allclose(a, b, rtol=1e-14, atol=0)


def test_rectified_first_step_is_the_gradient():
  # rho_1 = 1 < 5: the step is m_1 / (1 - b1) = g_1, whatever the scale of g (no adaptivity yet).
  g = jnp.array([1e-4, -3.0, 50.0])
  u, _ = scale_by_adabelief().update(g, scale_by_adabelief().init(g))
  np.testing.assert_allclose(u, g, rtol=1e-6)
  u, _ = scale_by_adabelief(degenerated_to_sgd=False).update(g, scale_by_adabelief().init(g))
  np.testing.assert_array_equal(u, jnp.zeros(3))


def test_mu_dtype_keeps_state_and_update_dtypes():
  params = {'w': jnp.ones((3, 2), jnp.bfloat16), 'b': jnp.zeros(2)}
  tx = adabelief(1e-3, mu_dtype=jnp.bfloat16)
  state = tx.init(params)
  for _ in range(2):
    updates, state = tx.update(jax.tree.map(jnp.ones_like, params), state, params)
  assert updates['w'].dtype == jnp.bfloat16 and updates['b'].dtype == jnp.float32
  assert state[0].mu['b'].dtype == jnp.bfloat16 and state[0].nu['b'].dtype == jnp.float32


@pytest.mark.parametrize('kwargs, name', [({'b1': -0.5}, 'b1'), ({'b2': 1.0}, 'b2'), ({'eps': -1e-16}, 'eps'),
                                          ({'eps_root': float('inf')}, 'eps_root'),
                                          ({'weight_decay': -1.0}, 'weight_decay')])
def test_bad_hyperparameters_are_named(kwargs, name):
  with pytest.raises(ValueError, match=name):
    adabelief(1e-3, **kwargs)
