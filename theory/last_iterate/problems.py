"""Convex test problems with closed-form minimisers, for the last-iterate experiments of Liu & Zhou (2312.08531).

A :class:`Problem` is ``min_{x in X} F(x) = f(x) + h(x)`` given by its exact value ``F``, a stochastic (sub)gradient
oracle of ``f`` (unbiased; the noise is additive, Gaussian or Student-t), the proximal map of ``h`` (Euclidean
problems) or the simplex geometry (mirror descent with the negative entropy), and ``x*``, ``F*`` in closed form:

* :func:`absolute_regression` (Lipschitz convex, nonsmooth, unbounded domain): ``F(x) = E|a^T (x - x*)|`` with
  ``a ~ N(0, I)``, which is exactly ``sqrt(2/pi) ||x - x*||``; ``F* = 0``.
* :func:`l1_strongly_convex` (Lipschitz on bounded sets, ``mu``-strongly convex, nonsmooth):
  ``F(x) = (mu/2) ||x||^2 + lam ||x - c||_1``; coordinatewise ``x*_j = sign(c_j) min(|c_j|, lam / mu)``.
* :func:`ill_conditioned_quadratic` (``L``-smooth convex, no useful strong convexity):
  ``F(x) = (1/2) (x - x*)^T S (x - x*)`` with ``S = diag(1 / j^2)``; ``F* = 0``.
* :func:`lasso_composite` (smooth strongly convex ``f`` plus a prox-friendly ``h``):
  ``f(x) = (1/2) ||x - c||^2``, ``h(x) = lam ||x||_1``; ``x* = soft(c, lam)``.
* :func:`simplex_quadratic` (non-Euclidean: the probability simplex, ``l1`` geometry):
  ``F(x) = <c, x> + (1/2) sum_j q_j x_j^2``; ``x*_j = max(0, (tau - c_j) / q_j)`` with ``tau`` fixing
  ``sum_j x*_j = 1`` (water filling).
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Problem(NamedTuple):
  """One problem: value, gradient oracle, prox (or simplex geometry), optimum and its constants.

  ``value(x)`` is ``F = f + h`` exactly; ``grad(x, key)`` an unbiased stochastic (sub)gradient of ``f``;
  ``prox(y, step)`` is ``argmin_x h(x) + ||x - y||^2 / (2 step)`` (the identity when ``h = 0``); ``geometry`` is
  ``'euclidean'`` or ``'simplex'``; ``mu`` the strong convexity of ``F`` (0 if none); ``setting`` one of
  ``'lipschitz_convex'``, ``'lipschitz_strongly_convex'``, ``'smooth_convex'``, ``'smooth_strongly_convex'``.
  """

  name: str
  setting: str
  geometry: str
  value: Callable
  grad: Callable
  prox: Callable
  x0: np.ndarray
  x_star: np.ndarray
  f_star: float
  mu: float
  noise: str


def soft_threshold(y, t):
  """``sign(y) max(|y| - t, 0)``: the prox of ``t ||.||_1``."""
  return jnp.sign(y) * jnp.maximum(jnp.abs(y) - t, 0.0)


def noise_sampler(noise: str, scale: float, df: float = 1.5) -> Callable:
  """``key, shape -> noise``: ``'gaussian'`` (``N(0, scale^2)``), ``'student'`` (``scale * t_df``: moments of
  order ``p < df`` only) or ``'none'``."""
  if noise == 'gaussian':
    return lambda key, shape: scale * jax.random.normal(key, shape)
  if noise == 'student':
    return lambda key, shape: scale * jax.random.t(key, df, shape)
  if noise == 'none':
    return lambda key, shape: jnp.zeros(shape)
  raise ValueError(f"last_iterate: noise must be 'gaussian', 'student' or 'none', got {noise!r}")


def _identity_prox(y, step):
  del step
  return y


def absolute_regression(dim: int = 10, noise: str = 'gaussian', scale: float = 1.0, df: float = 1.5,
                        radius: float = 2.0) -> Problem:
  """``F(x) = E_a |a^T (x - x*)| = sqrt(2/pi) ||x - x*||``, ``a ~ N(0, I)``; oracle ``sign(a^T (x - x*)) a + xi``.

  Example:
    >>> p = absolute_regression(dim=3, noise='none')
    >>> round(float(p.value(p.x0)), 6) == round(math.sqrt(2 / math.pi) * 2.0, 6)
    True
  """
  x_star = np.full(dim, radius / math.sqrt(dim))
  sample = noise_sampler(noise, scale, df)
  xs = jnp.asarray(x_star)

  def grad(x, key):
    ka, kn = jax.random.split(key)
    a = jax.random.normal(ka, (dim,))
    return jnp.sign(a @ (x - xs)) * a + sample(kn, (dim,))

  return Problem('absolute_regression', 'lipschitz_convex', 'euclidean',
                 lambda x: math.sqrt(2 / math.pi) * jnp.linalg.norm(x - xs), grad, _identity_prox,
                 np.zeros(dim), x_star, 0.0, 0.0, noise)


def l1_strongly_convex(dim: int = 10, mu: float = 1.0, lam: float = 1.0, noise: str = 'gaussian',
                       scale: float = 1.0, df: float = 1.5, seed: int = 0) -> Problem:
  """``F(x) = (mu/2) ||x||^2 + lam ||x - c||_1``, oracle ``mu x + lam sign(x - c) + xi``;
  ``x*_j = sign(c_j) min(|c_j|, lam / mu)``."""
  c = np.random.default_rng(seed).normal(size=dim) * 2 * lam / mu
  x_star = np.sign(c) * np.minimum(np.abs(c), lam / mu)
  value = lambda x: 0.5 * mu * jnp.sum(x ** 2) + lam * jnp.sum(jnp.abs(x - c))
  sample = noise_sampler(noise, scale, df)
  grad = lambda x, key: mu * x + lam * jnp.sign(x - c) + sample(key, (dim,))
  return Problem('l1_strongly_convex', 'lipschitz_strongly_convex', 'euclidean', value, grad, _identity_prox,
                 np.zeros(dim), x_star, float(value(x_star)), mu, noise)


def ill_conditioned_quadratic(dim: int = 10, noise: str = 'gaussian', scale: float = 1.0, df: float = 1.5,
                              radius: float = 2.0) -> Problem:
  """``F(x) = (1/2) (x - x*)^T S (x - x*)``, ``S = diag(1/j^2)`` (``L = 1``), oracle ``S (x - x*) + xi``; ``F* = 0``."""
  s = 1.0 / np.arange(1, dim + 1) ** 2
  x_star = np.full(dim, radius / math.sqrt(dim))
  sample = noise_sampler(noise, scale, df)
  value = lambda x: 0.5 * jnp.sum(s * (x - x_star) ** 2)
  grad = lambda x, key: s * (x - x_star) + sample(key, (dim,))
  return Problem('ill_conditioned_quadratic', 'smooth_convex', 'euclidean', value, grad, _identity_prox,
                 np.zeros(dim), x_star, 0.0, 0.0, noise)


def lasso_composite(dim: int = 10, lam: float = 0.5, noise: str = 'gaussian', scale: float = 1.0,
                    df: float = 1.5, seed: int = 0) -> Problem:
  """``f(x) = (1/2) ||x - c||^2`` (``mu = L = 1``), ``h(x) = lam ||x||_1``; oracle ``x - c + xi``;
  ``x* = soft(c, lam)``, ``F* = (1/2) ||x* - c||^2 + lam ||x*||_1``.

  Example:
    >>> p = lasso_composite(dim=4, noise='none')
    >>> bool(np.all(np.abs(p.x_star) <= np.abs(np.random.default_rng(0).normal(size=4) * 2)))
    True
  """
  c = np.random.default_rng(seed).normal(size=dim) * 2
  x_star = np.sign(c) * np.maximum(np.abs(c) - lam, 0.0)
  value = lambda x: 0.5 * jnp.sum((x - c) ** 2) + lam * jnp.sum(jnp.abs(x))
  sample = noise_sampler(noise, scale, df)
  grad = lambda x, key: x - c + sample(key, (dim,))
  prox = lambda y, step: soft_threshold(y, step * lam)
  return Problem('lasso_composite', 'smooth_strongly_convex', 'euclidean', value, grad, prox, np.zeros(dim),
                 x_star, float(value(x_star)), 1.0, noise)


def water_filling(c: np.ndarray, q: np.ndarray) -> np.ndarray:
  """``argmin_{x in simplex} <c, x> + (1/2) sum_j q_j x_j^2`` (``q > 0``): ``x_j = max(0, (tau - c_j) / q_j)``,
  ``tau`` the root of ``sum_j x_j = 1`` (piecewise linear, found exactly over the sorted breakpoints).

  Example:
    >>> water_filling(np.array([0.0, 1.0]), np.array([1.0, 1.0]))
    array([1., 0.])
  """
  order = np.argsort(c)
  cs, qs = c[order], q[order]
  for k in range(1, len(c) + 1):
    # Support = the k smallest c: sum_{j<k} (tau - c_j) / q_j = 1.
    tau = (1.0 + np.sum(cs[:k] / qs[:k])) / np.sum(1.0 / qs[:k])
    if k == len(c) or tau <= cs[k]:
      break
  return np.maximum(0.0, (tau - c) / q)


def simplex_quadratic(dim: int = 10, noise: str = 'gaussian', scale: float = 1.0, df: float = 1.5,
                      seed: int = 0) -> Problem:
  """``F(x) = <c, x> + (1/2) sum_j q_j x_j^2`` on the simplex, oracle ``c + q x + xi``; ``x*`` by
  :func:`water_filling`. Run with mirror descent (negative entropy, 1-strongly convex in ``||.||_1``)."""
  rng = np.random.default_rng(seed)
  c, q = rng.uniform(0, 1, dim), rng.uniform(0.5, 2.0, dim)
  x_star = water_filling(c, q)
  value = lambda x: jnp.sum(c * x) + 0.5 * jnp.sum(q * x ** 2)
  sample = noise_sampler(noise, scale, df)
  grad = lambda x, key: c + q * x + sample(key, (dim,))
  return Problem('simplex_quadratic', 'smooth_convex', 'simplex', value, grad, _identity_prox,
                 np.full(dim, 1.0 / dim), x_star, float(value(x_star)), 0.0, noise)


PROBLEMS = {'absolute_regression': absolute_regression, 'l1_strongly_convex': l1_strongly_convex,
            'ill_conditioned_quadratic': ill_conditioned_quadratic, 'lasso_composite': lasso_composite,
            'simplex_quadratic': simplex_quadratic}
