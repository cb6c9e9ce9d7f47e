"""MESA: the EMA teacher follows timm's ModelEmaV2 recurrence, no gradient reaches it, and steps of training
computed by hand in float64 from the paper's loss match."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optim
from optim.sharpness import mesa as mesa_lib
from optim.sharpness import trajectory


def _softmax(z):
  z = z - z.max(-1, keepdims=True)
  e = np.exp(z)
  return e / e.sum(-1, keepdims=True)


def test_teacher_is_model_ema_v2(x64):
  # ModelEmaV2: a copy of the initial model, then ema <- decay ema + (1 - decay) params after every step.
  rng = np.random.default_rng(0)
  params = [{'w': rng.normal(size=(3, 2)), 'b': rng.normal(size=2)} for _ in range(5)]
  term = optim.mesa(lambda p, x: x @ p['w'] + p['b'], decay=0.9)
  state = term.init(params[0])
  want = params[0]
  for p in params[1:]:
    state = term.update(state, params=p)
    want = jax.tree.map(lambda e, q: 0.9 * e + 0.1 * q, want, p)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-13), mesa_lib.teacher(state), want)


def test_training_steps_match_the_loss_computed_by_hand(x64):
  rng = np.random.default_rng(2)
  n, d, k = 6, 3, 4
  x, y = rng.normal(size=(n, d)), rng.integers(0, k, n)
  w0 = rng.normal(size=(d, k))
  lam, t, decay, lr, steps = 0.8, 5.0, 0.7, 0.3, 6
  apply = lambda w, xb: xb @ w
  term = optim.mesa(apply, weight=lam, temperature=t, decay=decay, start_epoch=0)
  loss = trajectory.regularize(apply, lambda f, yb: -jnp.take_along_axis(
      jax.nn.log_softmax(f), yb[:, None], -1)[:, 0], term)
  step = jax.jit(lambda w, state, xb, yb: jax.grad(lambda w: loss(w, state, xb, yb, epoch=1)[0])(w))
  w, state = jnp.asarray(w0), term.init(jnp.asarray(w0))
  w_np, ema_np = w0.copy(), w0.copy()
  for s in range(steps):
    idx = np.array([s % n, (s + 2) % n, (s + 3) % n])
    w = w - lr * step(w, state, x[idx], y[idx])
    state = term.update(state, params=w)
    # by hand: CE + lam T^2 KL(softmax(x ema / T) || softmax(x w / T)); d/dlogits = (q - onehot + lam T (q_T - p_T)) / B
    f, z = x[idx] @ w_np, x[idx] @ ema_np
    dlogits = (_softmax(f) - np.eye(k)[y[idx]] + lam * t * (_softmax(f / t) - _softmax(z / t))) / len(idx)
    w_np = w_np - lr * x[idx].T @ dlogits
    ema_np = decay * ema_np + (1 - decay) * w_np
  np.testing.assert_allclose(w, w_np, rtol=1e-11)
  np.testing.assert_allclose(mesa_lib.teacher(state), ema_np, rtol=1e-11)


def test_outside_the_window_it_is_the_base_loss(x64):
  term = optim.mesa(lambda w, x: x @ w, start_epoch=5, end_epoch=9)
  state = term.init(jnp.ones((2, 3)))
  f = jnp.array([[1.0, 2.0, 0.0]])
  values = [float(term.loss(f, state, epoch=e, inputs=jnp.ones((1, 2)))) for e in (5, 6, 8, 9)]
  assert values[0] == 0 and values[1] > 0 and values[2] > 0 and values[3] == 0


def test_bad_arguments_name_themselves():
  with pytest.raises(ValueError, match='mesa: decay'):
    optim.mesa(lambda w, x: x, decay=1.0)
  with pytest.raises(ValueError, match='mesa'):
    term = optim.mesa(lambda w, x: x)
    term.update(term.init({'a': jnp.ones(2)}), params={'b': jnp.ones(2)})
