"""The model of the coherence experiments: a ReLU MLP, its per-example and mean softmax cross-entropy."""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import optax

from theory.numerics import PyTree


def init_mlp(seed: int, sizes: Sequence[int]) -> tuple[dict[str, jax.Array], ...]:
  """A ReLU MLP ``sizes[0] -> ... -> sizes[-1]``: He-normal weights ``N(0, 2/fan_in)``, zero biases.

  Example:
    >>> [layer['w'].shape for layer in init_mlp(0, [4, 3, 2])]
    [(4, 3), (3, 2)]
  """
  if len(sizes) < 2 or min(sizes) < 1:
    raise ValueError(f'init_mlp: sizes must list >= 2 positive widths, got {sizes}')
  keys = jax.random.split(jax.random.key(seed), len(sizes) - 1)
  return tuple({'w': jax.random.normal(k, (a, b)) * math.sqrt(2.0 / a), 'b': jnp.zeros(b)}
               for k, a, b in zip(keys, sizes[:-1], sizes[1:]))


def mlp_logits(params: PyTree, x: jax.Array) -> jax.Array:
  """Logits ``(N, k)`` of the MLP of :func:`init_mlp` on inputs ``(N, d)``."""
  for layer in params[:-1]:
    x = jax.nn.relu(x @ layer['w'] + layer['b'])
  return x @ params[-1]['w'] + params[-1]['b']


def example_loss(params: PyTree, example: tuple[jax.Array, jax.Array]) -> jax.Array:
  """Cross-entropy of one example ``(x, y)`` (no batch axis): the loss whose gradients coherence compares."""
  x, y = example
  return optax.softmax_cross_entropy_with_integer_labels(mlp_logits(params, x[None])[0], y)


def mean_loss(params: PyTree, x: jax.Array, y: jax.Array) -> jax.Array:
  """Mean cross-entropy over a batch."""
  return optax.softmax_cross_entropy_with_integer_labels(mlp_logits(params, x), y).mean()


def accuracy(params: PyTree, x: jax.Array, y: jax.Array) -> jax.Array:
  """Fraction of ``x`` classified as ``y``."""
  return jnp.mean(jnp.argmax(mlp_logits(params, x), axis=-1) == y)
