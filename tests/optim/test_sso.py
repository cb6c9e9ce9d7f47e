"""SSO: outer and inner steps computed by hand in float64 from the paper's surrogate; the exact inner minimiser is
projected SGD in target space (the code's convention halves the step); one inner step is SGD; the identity target
space is SGD; per expensive gradient, m > 1 goes further than SGD on digits softmax regression."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optim
from experiments.lib.common import data


def _softmax(z):
  z = z - z.max(-1, keepdims=True)
  e = np.exp(z)
  return e / e.sum(-1, keepdims=True)


def _problem(seed=0, n=7, d=3, k=4):
  rng = np.random.default_rng(seed)
  return rng.normal(size=(n, d)), rng.integers(0, k, n), rng.normal(size=(d, k)) * 0.3


def _ce(f, y):
  return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(f), y[:, None], -1))


def _run(tx, w, x, y, outer):
  state = tx.init(w)
  for _ in range(outer):
    u, state = tx.update(w, state, w, model_fn=lambda w: x @ w, output_loss_fn=lambda f: _ce(f, y))
    w = optax.apply_updates(w, u)
  return w


def test_outer_and_inner_steps_by_hand(x64):
  x, y, w0 = _problem()
  eta, alpha, m, c = 0.7, 0.2, 4, 0.5
  w = w0.copy()
  for _ in range(3):                    # outer: one gradient of the mean CE w.r.t. the logits
    f_t = x @ w
    g = (_softmax(f_t) - np.eye(4)[y]) / len(y)
    omega = w.copy()
    for _ in range(m):                  # inner: gradient steps on eta <G, X w - f_t> + c ||X w - f_t||^2
      omega = omega - alpha * x.T @ (eta * g + 2 * c * (x @ omega - f_t))
    w = omega
  ours = _run(optim.sso(eta, inner_steps=m, inner_learning_rate=alpha), jnp.asarray(w0), jnp.asarray(x),
              jnp.asarray(y), 3)
  np.testing.assert_allclose(ours, w, rtol=1e-12)


@pytest.mark.parametrize('proximal_weight, target_step', [(0.5, 1.0), (1.0, 0.5)])
def test_exact_inner_minimum_is_projected_sgd_in_target_space(x64, proximal_weight, target_step):
  # f(w) = X w with X of full column rank: F = range(X), the projection X (X^T X)^-1 X^T (column by column).
  x, y, w0 = _problem(1, n=9)
  eta = 2.0
  proj = x @ np.linalg.solve(x.T @ x, x.T)
  f_t = x @ w0
  g = (_softmax(f_t) - np.eye(4)[y]) / len(y)
  want = proj @ (f_t - target_step * eta * g)
  lr = 0.9 / (2 * proximal_weight * np.linalg.eigvalsh(x.T @ x).max())
  tx = optim.sso(eta, inner_steps=3000, inner_learning_rate=lr, proximal_weight=proximal_weight)
  w1 = _run(tx, jnp.asarray(w0), jnp.asarray(x), jnp.asarray(y), 1)
  np.testing.assert_allclose(np.asarray(x) @ np.asarray(w1), want, rtol=1e-9, atol=1e-12)


def test_one_inner_step_is_sgd_on_an_mlp(x64):
  # grad h(theta_t) = eta J^T G = eta grad L(theta_t): one inner SGD step of size alpha is SGD with alpha * eta.
  x, y, _ = _problem(2, n=10, d=5)
  mlp = lambda p, x: jnp.tanh(x @ p['w1']) @ p['w2']
  k = jax.random.split(jax.random.key(0))
  p = {'w1': jax.random.normal(k[0], (5, 6)), 'w2': jax.random.normal(k[1], (6, 4))}
  tx = optim.sso(0.8, inner_steps=1, inner_learning_rate=0.5)
  u, _ = tx.update(p, tx.init(p), p, model_fn=lambda q: mlp(q, x), output_loss_fn=lambda f: _ce(f, y))
  g = jax.grad(lambda q: _ce(mlp(q, x), y))(p)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, -0.4 * b, rtol=1e-12), u, g)


def test_identity_target_space_is_sgd(x64):
  loss = lambda p: jnp.sum(jnp.cosh(p['a'])) + jnp.sum(p['b'] ** 4)
  p = {'a': jnp.array([0.3, -1.0]), 'b': jnp.array([[0.5, 2.0]])}
  tx = optim.registry.build('sso', learning_rate=0.05)
  extra = optim.registry.get('sso').oracles(loss_fn=loss, params=p, key=None)
  u, _ = tx.update(p, tx.init(p), p, **extra)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, -0.05 * b, rtol=1e-12), u, jax.grad(loss)(p))


def test_a_line_search_inner_optimizer_decreases_the_surrogate(x64):
  x, y, w0 = _problem(3)
  ls = optax.chain(optax.sgd(1.0), optax.scale_by_backtracking_linesearch(max_backtracking_steps=30,
                                                                         max_learning_rate=10.0))
  f_t = x @ w0
  g = jax.grad(lambda f: _ce(f, jnp.asarray(y)))(jnp.asarray(f_t))
  h = optim.optimizers.sso.surrogate(lambda w: jnp.asarray(x) @ w, f_t, g, 1.0)
  w1 = _run(optim.sso(1.0, inner_steps=20, inner_optimizer=ls), jnp.asarray(w0), jnp.asarray(x), jnp.asarray(y), 1)
  assert float(h(w1)) < float(h(jnp.asarray(w0))) - 1e-3


def test_more_inner_steps_go_further_per_expensive_gradient():
  # The paper's claim, small: digits softmax regression, 15 gradients of the loss w.r.t. the logits each; SGD
  # at the best of five step sizes against SSO with m = 20 cheap inner steps.
  ds = data.load_digits()
  x = jnp.asarray(ds.x_train.reshape(len(ds.x_train), -1))[:512]
  y = jnp.asarray(ds.y_train)[:512]
  loss = lambda w: _ce(x @ w, y)
  w0 = jnp.zeros((64, 10))
  grad = jax.jit(jax.grad(loss))
  sgd = []
  for lr in (1.5, 3.0, 6.0, 12.0, 24.0):
    w = w0
    for _ in range(15):
      w = w - lr * grad(w)
    sgd.append(float(loss(w)))
  assert min(sgd) < sgd[-1]   # the grid reaches past SGD's best step
  inner_lr = 0.9 / float(jnp.linalg.eigvalsh(x.T @ x).max())   # the surrogate's curvature is X^T X
  tx = optim.sso(8.0 * len(y), inner_steps=20, inner_learning_rate=inner_lr)
  step = jax.jit(lambda w, s: tx.update(w, s, w, model_fn=lambda w: x @ w, output_loss_fn=lambda f: _ce(f, y)))
  w, state = w0, tx.init(w0)
  for _ in range(15):
    u, state = step(w, state)
    w = w + u
  assert float(loss(w)) < 0.6 * min(sgd), (float(loss(w)), sgd)


def test_errors_name_the_argument():
  with pytest.raises(ValueError, match='sso: inner_steps'):
    optim.sso(0.1, inner_steps=0)
  with pytest.raises(ValueError, match='sso: learning_rate'):
    optim.sso(-0.1)
  tx = optim.sso(0.1)
  p = jnp.ones(3)
  with pytest.raises(ValueError, match='model_fn'):
    tx.update(p, tx.init(p), p)
  with pytest.raises(ValueError, match='output_loss_fn'):
    tx.update(p, tx.init(p), p, model_fn=lambda w: w)
