"""Small flax models for the experiments: an MLP and a CNN for images, a character-level transformer."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax


class MLP(nn.Module):
  hidden: Sequence[int] = (64,)
  num_classes: int = 10

  @nn.compact
  def __call__(self, x):
    x = x.reshape((x.shape[0], -1))
    for h in self.hidden:
      x = nn.relu(nn.Dense(h)(x))
    return nn.Dense(self.num_classes)(x)


class CNN(nn.Module):
  features: Sequence[int] = (16, 32)
  num_classes: int = 10

  @nn.compact
  def __call__(self, x):
    for f in self.features:
      x = nn.relu(nn.Conv(f, (3, 3))(x))
      x = nn.avg_pool(x, (2, 2), (2, 2), padding='SAME')
    x = x.reshape((x.shape[0], -1))
    return nn.Dense(self.num_classes)(x)


class Block(nn.Module):
  d_model: int
  heads: int

  @nn.compact
  def __call__(self, x):
    mask = nn.make_causal_mask(jnp.ones(x.shape[:2], jnp.int32))
    x = x + nn.SelfAttention(self.heads, use_bias=False)(nn.LayerNorm()(x), mask=mask)
    h = nn.gelu(nn.Dense(4 * self.d_model)(nn.LayerNorm()(x)))
    return x + nn.Dense(self.d_model)(h)


class CharTransformer(nn.Module):
  """A GPT-style decoder over characters: token + position embeddings, pre-norm blocks, a linear head."""

  vocab_size: int
  d_model: int = 64
  layers: int = 2
  heads: int = 4
  block: int = 64

  @nn.compact
  def __call__(self, tokens):
    pos = jnp.arange(tokens.shape[1])
    x = nn.Embed(self.vocab_size, self.d_model)(tokens) + nn.Embed(self.block, self.d_model)(pos)
    for _ in range(self.layers):
      x = Block(self.d_model, self.heads)(x)
    return nn.Dense(self.vocab_size)(nn.LayerNorm()(x))


def make(name: str, num_classes: int = 10, **kwargs) -> nn.Module:
  """A model by name: 'mlp', 'cnn' or 'char_transformer'."""
  table = {'mlp': MLP, 'cnn': CNN, 'char_transformer': CharTransformer}
  if name not in table:
    raise ValueError(f'model must be one of {sorted(table)}, got {name!r}')
  if name == 'char_transformer':
    return CharTransformer(**kwargs)
  return table[name](num_classes=num_classes, **kwargs)


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Mean softmax cross-entropy with integer labels."""
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
