"""Curvature products against dense float64 oracles: jax.hessian, jacfwd, and analytic Hessians.

Data come from numpy and each test runs its JAX work inside one ``jax.jit``: compiling many small eager ops
would dominate the run time.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from optim.primitives import curvature


def _mlp_params(seed):
  rng = np.random.default_rng(seed)
  return {'w1': rng.normal(size=(3, 4)), 'b1': 0.1 * rng.normal(size=4),
          'w2': rng.normal(size=(4, 2)), 'b2': 0.1 * rng.normal(size=2)}


def _mlp(params, x):
  return jnp.tanh(x @ params['w1'] + params['b1']) @ params['w2'] + params['b2']


def _data(seed, n=6):
  rng = np.random.default_rng(seed)
  return rng.normal(size=(n, 3)), rng.normal(size=(n, 2))


def _mse(z, y):
  return jnp.mean(jnp.sum((z - y) ** 2, axis=-1))


def _mlp_loss(p, x, y):
  return _mse(_mlp(p, x), y)


def _dense_hessian(f, params):
  flat, unravel = ravel_pytree(params)
  return jax.hessian(lambda x: f(unravel(x)))(flat)


def _hessian_of(loss, w):
  return jax.jit(lambda w: curvature.dense_matrix(curvature.hessian_matvec(loss, w), w))(w)


def test_hvp_matches_dense_hessian_on_pytree(x64):
  @jax.jit
  def run(params, x, y, v):
    h = _dense_hessian(lambda p: _mlp_loss(p, x, y), params)
    products = (curvature.hvp(_mlp_loss, params, v, x, y), curvature.hessian_matvec(_mlp_loss, params, x, y)(v))
    dense = curvature.dense_matrix(curvature.hessian_matvec(_mlp_loss, params, x, y), params)
    return h, h @ ravel_pytree(v)[0], [ravel_pytree(p)[0] for p in products], dense

  h, hv, products, dense = run(_mlp_params(0), *_data(1), _mlp_params(2))
  for got in products:
    np.testing.assert_allclose(got, hv, atol=1e-10)
  np.testing.assert_allclose(dense, h, atol=1e-10)


def test_linear_regression_hessian_is_two_over_n_xtx(x64):
  rng = np.random.default_rng(0)
  x, y = rng.normal(size=(20, 5)), rng.normal(size=20)
  h = _hessian_of(lambda w: jnp.mean((x @ w - y) ** 2), np.ones(5))
  np.testing.assert_allclose(h, 2.0 / 20 * x.T @ x, rtol=1e-10)


def test_logistic_regression_hessian(x64):
  rng = np.random.default_rng(1)
  x, y, w = rng.normal(size=(30, 4)), (rng.uniform(size=30) < 0.5).astype(float), 0.5 * rng.normal(size=4)
  h = _hessian_of(lambda w: jnp.mean(jax.nn.softplus(x @ w) - y * (x @ w)), w)
  s = 1.0 / (1.0 + np.exp(-x @ w))
  np.testing.assert_allclose(h, x.T @ (x * (s * (1 - s))[:, None]) / 30, rtol=1e-8)


def _softmax_loss(x, labels):
  return lambda w: -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(x @ w), labels[:, None], axis=1))


def _softmax_problem(n=25, d=4, k=3):
  rng = np.random.default_rng(2)
  return rng.normal(size=(n, d)), rng.integers(0, k, size=n), rng.normal(size=(d, k))


def test_softmax_linear_model_hessian(x64):
  x, labels, w = _softmax_problem()
  logits = x @ w
  p = np.exp(logits - logits.max(1, keepdims=True))
  p /= p.sum(1, keepdims=True)
  # H = (1/N) sum_n (x x^T) kron (diag p - p p^T), in the row-major order of w[i, c].
  expected = sum(np.kron(np.outer(xi, xi), np.diag(pi) - np.outer(pi, pi)) for xi, pi in zip(x, p)) / len(x)
  np.testing.assert_allclose(_hessian_of(_softmax_loss(x, labels), w), expected, rtol=1e-8, atol=1e-12)


def test_softmax_hessian_at_zero_has_closed_form_spectrum(x64):
  x, labels, w = _softmax_problem()
  (n, d), k = x.shape, w.shape[1]
  h = _hessian_of(_softmax_loss(x, labels), np.zeros_like(w))
  # At W = 0: H = (X^T X / N) kron (1/k)(I - 11^T/k); eigenvalues of X^T X/(N k), each k-1 times, plus zeros.
  expected = np.concatenate([np.repeat(np.linalg.eigvalsh(x.T @ x / (n * k)), k - 1), np.zeros(d)])
  np.testing.assert_allclose(np.linalg.eigvalsh(h), np.sort(expected), atol=1e-12)


def test_gnvp_matches_dense_ggn_and_differs_from_hessian(x64):
  @jax.jit
  def run(params, x, y, v):
    flat, unravel = ravel_pytree(params)
    jac = jax.jacfwd(lambda f: _mlp(unravel(f), x).ravel())(flat)  # (n * outputs, P)
    z = _mlp(params, x)
    h_out = jax.hessian(lambda zz: _mse(zz.reshape(z.shape), y))(z.ravel())
    ggn = jac.T @ h_out @ jac
    got = ravel_pytree(curvature.gnvp(_mlp, _mse, params, v, x, y))[0]
    dense_g = curvature.dense_matrix(curvature.gauss_newton_matvec(_mlp, _mse, params, x, y), params)
    h = _dense_hessian(lambda p: _mlp_loss(p, x, y), params)
    return ggn, ggn @ ravel_pytree(v)[0], got, dense_g, h

  ggn, ggn_v, got, dense_g, h = run(_mlp_params(3), *_data(4), _mlp_params(5))
  np.testing.assert_allclose(got, ggn_v, atol=1e-10)
  np.testing.assert_allclose(dense_g, ggn, atol=1e-10)
  assert np.linalg.eigvalsh(dense_g).min() > -1e-10  # PSD for a convex loss
  assert np.abs(h - ggn).max() > 1e-2  # tanh hidden layer: the Hessian has a non-zero second-order term


def test_gnvp_equals_hvp_for_linear_model(x64):
  rng = np.random.default_rng(6)
  x, labels, w, v = rng.normal(size=(10, 3)), rng.integers(0, 4, size=10), rng.normal(size=(3, 4)), rng.normal(
      size=(3, 4))
  loss = lambda z, lab: -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(z), lab[:, None], axis=1))
  run = jax.jit(lambda w, v: (curvature.gnvp(lambda w, x: x @ w, loss, w, v, x, labels),
                              curvature.hvp(lambda w: loss(x @ w, labels), w, v)))
  got, expected = run(w, v)
  np.testing.assert_allclose(got, expected, atol=1e-12)


def test_per_example_grads_match_loop(x64):
  loss = lambda p, ex: jnp.sum((_mlp(p, ex['x'][None]) - ex['y']) ** 2)

  @jax.jit
  def run(params, x, y):
    got = curvature.per_example_grads(loss, params, {'x': x, 'y': y})
    looped = [jax.grad(loss)(params, {'x': x[i], 'y': y[i]}) for i in range(x.shape[0])]
    batch_grad = jax.grad(lambda p: jnp.mean(jnp.sum((_mlp(p, x) - y) ** 2, axis=-1)))(params)
    return got, looped, batch_grad

  got, looped, batch_grad = run(_mlp_params(7), *_data(8, n=5))
  for i, expected in enumerate(looped):
    jax.tree.map(lambda g, e: np.testing.assert_allclose(g[i], e, atol=1e-12), got, expected)
  # The mean of per-example gradients is the batch gradient.
  jax.tree.map(lambda g, e: np.testing.assert_allclose(g.mean(0), e, atol=1e-12), got, batch_grad)


def test_primitives_under_jit_on_pytree(x64):
  params, (x, y) = _mlp_params(9), _data(10)
  per_example_loss = lambda p, ex: _mse(_mlp(p, ex[0]), ex[1])

  def products(params, v):
    return (curvature.hvp(_mlp_loss, params, v, x, y), curvature.hessian_matvec(_mlp_loss, params, x, y)(v),
            curvature.gnvp(_mlp, _mse, params, v, x, y),
            curvature.gauss_newton_matvec(_mlp, _mse, params, x, y)(v),
            curvature.per_example_grads(per_example_loss, params, (x, y)))

  v = jax.tree.map(np.ones_like, params)
  jitted = jax.jit(products)(params, v)
  assert all(jax.tree.structure(out) == jax.tree.structure(params) for out in jitted)
  np.testing.assert_allclose(ravel_pytree(jitted[0])[0], ravel_pytree(jitted[1])[0], atol=1e-12)
  np.testing.assert_allclose(ravel_pytree(jitted[2])[0], ravel_pytree(jitted[3])[0], atol=1e-12)
