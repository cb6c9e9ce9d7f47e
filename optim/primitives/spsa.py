"""Zeroth-order gradient estimates: SPSA with Gaussian directions (the estimator of MeZO and Just One Byte).

For a direction z ~ N(0, I) (a pytree like the parameters) the two-point SPSA projected gradient is

    p = (L(theta + eps z) - L(theta - eps z)) / (2 eps)  ~  z . grad L(theta),

and g = p z is an estimate of the gradient: for a quadratic L the central difference is exactly z . grad L, so
E[p z] = E[z z^T] grad L = grad L, unbiased; for smooth L the bias is O(eps^2). Averaging K directions divides
the variance by K. The directions are regenerated from a key (``fold_in(key, leaf_number)`` per leaf), so a
sender need only transmit p and the key's seed: the basis of MeZO (arXiv 2305.17333) and of Just One Byte
(arXiv 2306.10015, :func:`decentral.just_one_byte`).

>>> import jax, jax.numpy as jnp
>>> loss = lambda w: 0.5 * jnp.sum(w['a'] ** 2)
>>> params = {'a': jnp.array([1.0, -2.0])}
>>> z = gaussian_direction(jax.random.key(0), params)
>>> p = spsa_projected_gradient(loss, params, z, epsilon=1e-2)
>>> bool(jnp.allclose(p, jnp.vdot(z['a'], params['a']), rtol=1e-4))  # exact for a quadratic
True
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp

PyTree = Any


def gaussian_direction(key: jax.Array, params: PyTree) -> PyTree:
  """z ~ N(0, I) shaped like ``params`` (float32), leaf i drawn with ``fold_in(key, i)``."""
  leaves, treedef = jax.tree.flatten(params)
  return jax.tree.unflatten(treedef, [jax.random.normal(jax.random.fold_in(key, i), jnp.shape(x), jnp.float32)
                                      for i, x in enumerate(leaves)])


def _wide(x):
  return jnp.asarray(x).astype(jnp.promote_types(jnp.result_type(x), jnp.float32))


def _shift(params, direction, step):
  return jax.tree.map(lambda x, z: (_wide(x) + step * z).astype(x.dtype), params, direction)


def spsa_projected_gradient(loss_fn: Callable[[PyTree], jax.Array], params: PyTree, direction: PyTree,
                            epsilon: float) -> jax.Array:
  """p = (L(theta + eps z) - L(theta - eps z)) / (2 eps): two loss evaluations, no gradient.

  Args:
    loss_fn: ``params -> scalar``.
    params: theta.
    direction: z, a pytree like ``params``.
    epsilon: eps > 0, the perturbation size.

  Returns:
    The scalar p (float32, or the loss's dtype if wider), an estimate of z . grad L(theta).
  """
  if not (math.isfinite(epsilon) and epsilon > 0):
    raise ValueError(f'epsilon must be positive and finite, got {epsilon!r}')
  if jax.tree.structure(direction) != jax.tree.structure(params):
    raise ValueError('direction must have the tree structure of params')
  plus = _wide(loss_fn(_shift(params, direction, epsilon)))
  minus = _wide(loss_fn(_shift(params, direction, -epsilon)))
  return (plus - minus) / (2.0 * epsilon)


def spsa_gradient(loss_fn: Callable[[PyTree], jax.Array], params: PyTree, key: jax.Array, *,
                  epsilon: float = 1e-3, num_samples: int = 1) -> tuple[PyTree, jax.Array]:
  """The SPSA gradient estimate g = (1/K) sum_k p_k z_k with z_k = gaussian_direction(fold_in(key, k)).

  Args:
    loss_fn: ``params -> scalar``.
    params: theta.
    key: the PRNG key the directions come from.
    epsilon: the perturbation size.
    num_samples: K >= 1 directions.

  Returns:
    (g, a pytree like ``params`` in float32; p, the K projected gradients).
  """
  if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
    raise ValueError(f'num_samples must be a positive integer, got {num_samples!r}')

  def one(k):
    z = gaussian_direction(jax.random.fold_in(key, k), params)
    return spsa_projected_gradient(loss_fn, params, z, epsilon), z

  ps, zs = jax.lax.map(one, jnp.arange(num_samples))
  g = jax.tree.map(lambda z: jnp.tensordot(ps, z, axes=1) / num_samples, zs)
  return g, ps
