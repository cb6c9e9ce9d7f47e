"""Gradient descent on the non-convex two-layer ReLU objective from several initialisations, the baseline the
convex program is compared with (Bai, Gautam & Sojoudi, arXiv 2201.01965, Section 5).

    L(U, alpha) = (1/2) || sum_j (X u_j)_+ alpha_j - y ||^2 + (beta/2) (||U||_F^2 + ||alpha||^2),

full-batch (``batch_size=None``) or mini-batch SGD (``optax.sgd``; a mini-batch gradient of the data term is scaled
by ``n / B`` so that it is unbiased for the full objective), ``U, alpha ~ N(0, init_scale^2)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from theory.numerics import float64


def _loss(params, x, y, beta, scale):
  u, alpha = params
  r = jax.nn.relu(x @ u.T) @ alpha - y
  return 0.5 * scale * r @ r + 0.5 * beta * (jnp.sum(u ** 2) + jnp.sum(alpha ** 2))


@float64
def train_nonconvex(x: np.ndarray, y: np.ndarray, width: int, beta: float, num_inits: int = 10,
                    learning_rate: float = 0.01, steps: int = 5000, batch_size: int | None = None,
                    init_scale: float = 0.5, seed: int = 0) -> dict:
  """Trains ``num_inits`` networks (``vmap``) and returns ``{'objective' (num_inits, steps) of the full objective,
  'u' (num_inits, width, d), 'alpha' (num_inits, width)}``."""
  x, y = jnp.asarray(x, jnp.float64), jnp.asarray(y, jnp.float64)
  n, d = x.shape
  opt = optax.sgd(learning_rate)

  def one(key):
    ku, ka, kb = jax.random.split(key, 3)
    params = (init_scale * jax.random.normal(ku, (width, d)), init_scale * jax.random.normal(ka, (width,)))

    def step(carry, t):
      params, state = carry
      if batch_size is None:
        g = jax.grad(_loss)(params, x, y, beta, 1.0)
      else:
        idx = jax.random.choice(jax.random.fold_in(kb, t), n, (batch_size,), replace=False)
        g = jax.grad(_loss)(params, x[idx], y[idx], beta, n / batch_size)
      updates, state = opt.update(g, state, params)
      params = optax.apply_updates(params, updates)
      return (params, state), _loss(params, x, y, beta, 1.0)

    (params, _), obj = jax.lax.scan(step, (params, opt.init(params)), jnp.arange(steps))
    return obj, params

  keys = jax.random.split(jax.random.key(seed), num_inits)
  obj, (u, alpha) = jax.jit(jax.vmap(one))(keys)
  return {'objective': np.asarray(obj), 'u': np.asarray(u), 'alpha': np.asarray(alpha)}
