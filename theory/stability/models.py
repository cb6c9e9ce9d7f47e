"""The nonlinear models of the stability experiments: diagonal linear and two-layer ReLU networks, their square
loss and initialisation."""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp

from theory.numerics import PyTree


def diagonal_net(params: PyTree, x: jax.Array) -> jax.Array:
  """Diagonal linear network ``f(x) = <u * v, x>``; ``params = {'u': (d,), 'v': (d,)}``."""
  return x @ (params['u'] * params['v'])


def relu_net(params: PyTree, x: jax.Array) -> jax.Array:
  """Two-layer ReLU network ``f(x) = sum_k a_k relu(w_k^T x)``; ``params = {'w': (m, d), 'a': (m,)}``."""
  return jax.nn.relu(x @ params['w'].T) @ params['a']


MODELS: dict[str, Callable[[PyTree, jax.Array], jax.Array]] = {'diagonal': diagonal_net, 'relu': relu_net}


def square_loss(model, params, x, y):
  """``(1/2) mean_i (f(x_i) - y_i)^2`` for ``f = model(params, .)``."""
  return 0.5 * jnp.mean((model(params, x) - y) ** 2)


def init_params(model: str, seed: int, dim: int, width: int = 50, scale: float = 1.0) -> dict[str, jax.Array]:
  """Initial parameters: diagonal ``u = scale * 1, v = 0``; ReLU ``w_k ~ N(0, I/d)``, ``a_k ~ scale N(0, 1/m)``."""
  if model == 'diagonal':
    return {'u': scale * jnp.ones(dim), 'v': jnp.zeros(dim)}
  if model == 'relu':
    kw, ka = jax.random.split(jax.random.key(seed))
    return {'w': jax.random.normal(kw, (width, dim)) / math.sqrt(dim),
            'a': scale * jax.random.normal(ka, (width,)) / math.sqrt(width)}
  raise ValueError(f'model must be one of {sorted(MODELS)}, got {model!r}')
