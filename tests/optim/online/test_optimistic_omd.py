"""Optimistic OMD (optim.optimistic_omd): optax's optimistic gradient descent where they coincide, the first rounds
by hand from the paper's two-sequence equations (ball and simplex, adaptive step), and the hint's effect."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optim.online import optimistic_omd, strongly_convex_schedule


def _grads(t, params):
  """A deterministic gradient sequence that depends on the point (a game-like rotation plus a drift)."""
  return jax.tree.map(lambda p: jnp.roll(p, 1) * 0.7 - 0.3 * p + jnp.cos(0.5 * t), params)


def _run(tx, params, steps):
  state = tx.init(params)
  out = []
  for t in range(steps):
    u, state = tx.update(_grads(t, params), state, params)
    params = optax.apply_updates(params, u)
    out.append(params)
  return out


@pytest.mark.parametrize('form', ['two_sequence', 'one_step'])
def test_equals_optax_optimistic_gradient_descent_on_rd(x64, form):
  # optax takes g_0 = g_1 (a plain first step): our first_hint='gradient'; from there on both are
  # x_{t+1} = x_t - eta (2 g_t - g_{t-1}).
  params = {'w': jnp.asarray(np.random.default_rng(0).normal(size=(3, 2))), 'b': jnp.asarray([0.5, -1.0])}
  ours = _run(optimistic_omd(0.05, form=form, first_hint='gradient'), params, 20)
  ref = _run(optax.optimistic_gradient_descent(0.05, alpha=1.0, beta=1.0), params, 20)
  for a, b in zip(ours, ref):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-13, atol=1e-14), a, b)


@pytest.mark.parametrize('form', ['two_sequence', 'one_step'])
def test_paper_first_hint_is_zero_on_rd(x64, form):
  # M_1 = 0: x_2 = x_1 - 2 eta g_1, then x_{t+1} = x_t - eta (2 g_t - g_{t-1}) (by hand).
  params = jnp.asarray([0.5, -1.0, 2.0])
  ours = _run(optimistic_omd(0.05, form=form), params, 6)
  x, prev = params, jnp.zeros(3)
  for t in range(6):
    g = _grads(t, x)
    x, prev = x - 0.05 * (2 * g - prev), g
    np.testing.assert_allclose(ours[t], x, rtol=1e-13)


def _proj_ball(x, r):
  n = np.linalg.norm(x)
  return x if n <= r else x * r / n


def test_first_rounds_by_hand_on_the_ball_with_the_adaptive_step(x64):
  # The paper: x_t = argmin <M_t,x> + |x - xh_t|^2/(2 eta_t), xh_{t+1} = argmin <g_t,x> + |x - xh_t|^2/(2 eta_t),
  # eta_t = D / sqrt(delta + sum_{s<t} |g_s - M_s|^2), D = 2r, M_t = g_{t-1}, M_1 = 0.
  r, delta = 0.8, 0.5
  gs = np.random.default_rng(1).normal(size=(4, 3)) * 2.0
  tx = optimistic_omd(radius=r, delta=delta)
  x = jnp.asarray([0.3, -0.2, 0.1])
  state = tx.init(x)
  xh, m, errs, played = np.asarray(x), np.zeros(3), 0.0, np.asarray(x)
  for t in range(4):
    eta = 2 * r / np.sqrt(delta + errs)
    xh = _proj_ball(xh - eta * gs[t], r)
    errs += np.sum((gs[t] - m) ** 2)
    m = gs[t]
    played = _proj_ball(xh - 2 * r / np.sqrt(delta + errs) * m, r)
    u, state = tx.update(jnp.asarray(gs[t]), state, x)
    x = x + u
    np.testing.assert_allclose(x, played, rtol=1e-13)
    np.testing.assert_allclose(state.xhat, xh, rtol=1e-13)
  assert np.linalg.norm(played) <= r + 1e-12


def test_first_rounds_by_hand_on_the_simplex(x64):
  # Entropy: x = xh * exp(-eta g) / Z (multiplicative weights), for each row of a (2, 3) leaf.
  gs = np.random.default_rng(2).normal(size=(3, 2, 3))
  tx = optimistic_omd(0.4, mirror_map='entropy')
  x = jnp.full((2, 3), 1.0 / 3)
  state = tx.init(x)
  mw = lambda y, g: y * np.exp(-0.4 * g) / np.sum(y * np.exp(-0.4 * g), axis=-1, keepdims=True)
  xh = np.asarray(x)
  for t in range(3):
    xh = mw(xh, gs[t])
    u, state = tx.update(jnp.asarray(gs[t]), state, x)
    x = x + u
    np.testing.assert_allclose(x, mw(xh, gs[t]), rtol=1e-12)
    np.testing.assert_allclose(np.sum(x, axis=-1), 1.0, rtol=1e-12)


def test_a_hint_replaces_the_last_gradient(x64):
  tx = optimistic_omd(0.1)
  x = jnp.zeros(2)
  state = tx.init(x)
  u, _ = tx.update(jnp.asarray([1.0, 0.0]), state, x, hint=jnp.asarray([0.0, 2.0]))
  # xh_2 = -0.1 g_1, x_2 = xh_2 - 0.1 M_2 with M_2 the hint.
  np.testing.assert_allclose(u, [-0.1, -0.2], rtol=1e-12)


def test_plain_omd_and_the_schedule(x64):
  tx = optimistic_omd(strongly_convex_schedule(2.0), optimism=False)
  x = jnp.asarray([1.0])
  state = tx.init(x)
  for t in range(3):  # plain OGD with eta_t = 1/(2 t) on f = x^2 (grad 2x): x_{t+1} = x_t (1 - 1/t)
    u, state = tx.update(2 * x, state, x)
    x = x + u
    if t == 0:
      np.testing.assert_allclose(x, [0.0], atol=1e-15)


def test_bad_arguments_are_named():
  with pytest.raises(ValueError, match='form'):
    optimistic_omd(0.1, form='three')
  with pytest.raises(ValueError, match='mirror_map'):
    optimistic_omd(0.1, mirror_map='l1')
  with pytest.raises(ValueError, match='first_hint'):
    optimistic_omd(0.1, first_hint='last')
  with pytest.raises(ValueError, match='learning_rate'):
    optimistic_omd(-0.1)
  tx = optimistic_omd()
  with pytest.raises(ValueError, match='diameter'):
    tx.update(jnp.ones(2), tx.init(jnp.ones(2)), jnp.ones(2))
