"""The planted problems (tensor PCA, single-index), their loss and the closed-form partial-trace oracle."""

from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp


def check_k(k: int) -> None:
  """Raises a ValueError naming ``k`` unless it is 3 or 4 (the orders the oracle covers)."""
  if k not in (3, 4):
    raise ValueError(f'k must be 3 or 4, got {k!r}')


def _hermite(k: int, t):
  """Normalised Hermite polynomials ``He_k / sqrt(k!)``."""
  if k == 3:
    return (t ** 3 - 3 * t) / math.sqrt(6)
  return (t ** 4 - 6 * t ** 2 + 3) / math.sqrt(24)


def unit_vector(key, d):
  """A uniformly random unit vector of ``R^d``."""
  v = jax.random.normal(key, (d,))
  return v / jnp.linalg.norm(v)


def _symmetrise(z: jax.Array) -> jax.Array:
  perms = list(itertools.permutations(range(z.ndim)))
  return sum(jnp.transpose(z, p) for p in perms) / len(perms)


def tensor_problem(key: jax.Array, d: int, n: float, k: int) -> dict[str, jax.Array]:
  """``T = theta*^{(x)k} + sym(Z) / sqrt(n)`` and ``theta*`` (float64 under ``jax.enable_x64``)."""
  check_k(k)
  k_star, k_noise = jax.random.split(key)
  star = unit_vector(k_star, d)
  signal = functools.reduce(jnp.multiply.outer, [star] * k)
  return {'theta_star': star, 'T': signal + _symmetrise(jax.random.normal(k_noise, (d,) * k)) / jnp.sqrt(n)}


def single_index_problem(key: jax.Array, d: int, n: int, k: int) -> dict[str, jax.Array]:
  """``x_i ~ N(0, I_d)``, ``y_i = h_k(<theta*, x_i>)`` and ``theta*``."""
  check_k(k)
  k_star, k_x = jax.random.split(key)
  star = unit_vector(k_star, d)
  x = jax.random.normal(k_x, (int(n), d))
  return {'theta_star': star, 'x': x, 'y': _hermite(k, x @ star)}


def loss_fn(problem: dict[str, jax.Array], k: int):
  """``theta -> L_n(theta)`` for a tensor (``'T'``) or single-index (``'x', 'y'``) problem."""
  if 'T' in problem:
    t = problem['T']
    return lambda theta: -functools.reduce(lambda acc, _: acc @ theta, range(k - 1), t) @ theta
  x, y = problem['x'], problem['y']
  return lambda theta: -jnp.mean(y * _hermite(k, x @ theta))


def oracle(problem: dict[str, jax.Array], k: int) -> jax.Array:
  """The closed-form partial-trace estimate the average approaches: a vector (k = 3) or a matrix (k = 4)."""
  check_k(k)
  if 'T' in problem:
    t = problem['T']
    return jnp.einsum('iij->j', t) if k == 3 else jnp.einsum('ccab->ab', t)
  x, y = problem['x'], problem['y']
  d = x.shape[1]
  # E_mu[z h_3(z.x)] ~ (|x|^2 - d - 2) x and the traceless part of E_mu[z z^T h_4(z.x)] ~ (|x|^2 - d - 4) x x^T.
  c = y * (jnp.sum(x * x, axis=1) - d - 2 * (k - 2))
  return x.T @ c / x.shape[0] if k == 3 else (x.T * c) @ x / x.shape[0]
