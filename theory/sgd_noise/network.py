"""A fully connected network trained by SGD to zero hinge loss with the ``alpha``-trick, at temperature ``T``.

Predictor ``F(w, x) = alpha (f(w, x) - f(w_0, x))`` with ``f`` a ReLU MLP in the NTK parametrization
(``depth`` hidden layers of ``width``, weights ``N(0, 1)`` scaled by ``1 / sqrt(fan_in)``); loss
``L(w) = (1 / (alpha^2 P)) sum_mu max(0, 1 - y_mu F(w, x_mu))``; SGD ``w <- w - eta grad L_B`` on batches of
``B`` drawn with replacement, temperature ``T = eta / B``; training stops when every training margin
``y_mu F(w, x_mu)`` is at least 1 (zero hinge loss; checked every ``check_every`` steps). The ``1 / alpha^2``
makes the function-space dynamics at initialisation independent of ``alpha``: ``alpha >> 1`` is the lazy
(kernel) regime, ``alpha << 1`` the feature-learning one (Geiger et al., arXiv 1906.08034, the convention the
paper builds on: Sclocchi, Geiger & Wyart, arXiv 2301.13703). ``t* = eta x steps``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def init_mlp(key: jax.Array, d: int, width: int, depth: int) -> dict[str, jax.Array]:
  """Standard normal weights of a ``depth``-hidden-layer MLP with a scalar output (no biases)."""
  sizes = [d] + [width] * depth + [1]
  keys = jax.random.split(key, len(sizes) - 1)
  return {f'w{l}': jax.random.normal(k, (a, b), jnp.zeros(()).dtype)
          for l, (k, a, b) in enumerate(zip(keys, sizes[:-1], sizes[1:]))}


def mlp(params: dict[str, jax.Array], x: jax.Array) -> jax.Array:
  """``f(w, x)`` for a batch ``x`` (``N x d``): ReLU layers, each weight scaled by ``1 / sqrt(fan_in)``."""
  h = x
  n = len(params)
  for l in range(n):
    w = params[f'w{l}']
    h = h @ w / jnp.sqrt(w.shape[0])
    if l < n - 1:
      h = jax.nn.relu(h) * jnp.sqrt(2.0)  # He gain keeps the preactivation scale O(1) through depth
  return h[:, 0]


def predictor(params, params0, x, alpha):
  """``F = alpha (f(w, x) - f(w_0, x))``."""
  return alpha * (mlp(params, x) - mlp(params0, x))


def train(x: jax.Array, y: jax.Array, *, alpha: float, temperature: float, batch: int, key: jax.Array,
          width: int = 128, depth: int = 2, check_every: int = 16, max_steps: int = 100_000,
          x_test: jax.Array | None = None, y_test: jax.Array | None = None) -> dict[str, jax.Array]:
  """SGD from a random ``w_0`` (drawn with ``key``) until zero hinge loss; jit- and vmap-able.

  Returns:
    ``steps``, ``t_star``, ``converged``, ``weight_change`` (``||w - w_0|| / ||w_0||``), ``train_loss``, and with
    test data ``test_error`` and the test outputs ``f_test`` (``F`` on ``x_test``).
  """
  p, d = x.shape
  eta = temperature * batch
  k_init, k_batch = jax.random.split(key)
  params0 = init_mlp(k_init, d, width, depth)
  loss = lambda w, xb, yb: jnp.mean(jax.nn.relu(1 - yb * predictor(w, params0, xb, alpha))) / alpha ** 2
  grad = jax.grad(loss)
  min_margin = lambda w: jnp.min(y * predictor(w, params0, x, alpha))

  def cond(state):
    w, step, margin = state
    return (margin < 1) & (step < max_steps)

  def body(state):
    w, step, _ = state

    def sgd(i, w):
      idx = jax.random.randint(jax.random.fold_in(k_batch, step + i), (batch,), 0, p)
      return jax.tree.map(lambda a, g: a - eta * g, w, grad(w, x[idx], y[idx]))

    w = jax.lax.fori_loop(0, check_every, sgd, w)
    return w, step + check_every, min_margin(w)

  w, steps, margin = jax.lax.while_loop(cond, body, (params0, jnp.asarray(0), min_margin(params0)))
  norm = lambda t: jnp.sqrt(sum(jnp.sum(a ** 2) for a in jax.tree.leaves(t)))
  out = {'steps': steps, 't_star': eta * steps, 'converged': margin >= 1,
         'weight_change': norm(jax.tree.map(jnp.subtract, w, params0)) / norm(params0),
         'train_loss': loss(w, x, y) * alpha ** 2}
  if x_test is not None:
    f_test = predictor(w, params0, x_test, alpha)
    out |= {'f_test': f_test, 'test_error': jnp.mean((jnp.sign(f_test) != y_test).astype(f_test.dtype))}
  return out
