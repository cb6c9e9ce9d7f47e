"""The model of the Hessian-spectrum experiments: a small tanh MLP and its mean softmax cross-entropy."""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import optax

from theory.numerics import PyTree


def init_mlp(seed: int, sizes: Sequence[int]) -> tuple[dict[str, jax.Array], ...]:
  """A tanh MLP ``sizes[0] -> ... -> sizes[-1]``: weights ``N(0, 1/fan_in)``, zero biases.

  tanh (not ReLU) keeps the Hessian smooth, so the residual ``H - G`` is not an artefact of kinks.

  Args:
    seed: integer seed.
    sizes: layer widths, input first, number of classes last.

  Returns:
    A tuple of ``{'w': (fan_in, fan_out), 'b': (fan_out,)}`` dicts (in the current default float dtype).

  Example:
    >>> p = init_mlp(0, [4, 3, 2])
    >>> [layer['w'].shape for layer in p]
    [(4, 3), (3, 2)]
  """
  if len(sizes) < 2 or min(sizes) < 1:
    raise ValueError(f'sizes must list >= 2 positive widths, got {sizes}')
  keys = jax.random.split(jax.random.key(seed), len(sizes) - 1)
  return tuple({'w': jax.random.normal(k, (a, b)) / math.sqrt(a), 'b': jnp.zeros(b)}
               for k, a, b in zip(keys, sizes[:-1], sizes[1:]))


def mlp_logits(params: PyTree, x: jax.Array) -> jax.Array:
  """Logits ``(N, k)`` of the tanh MLP of :func:`init_mlp`."""
  for layer in params[:-1]:
    x = jnp.tanh(x @ layer['w'] + layer['b'])
  return x @ params[-1]['w'] + params[-1]['b']


def cross_entropy(params: PyTree, x: jax.Array, y: jax.Array) -> jax.Array:
  """Mean softmax cross-entropy of the MLP on ``(x, y)``."""
  return optax.softmax_cross_entropy_with_integer_labels(mlp_logits(params, x), y).mean()
