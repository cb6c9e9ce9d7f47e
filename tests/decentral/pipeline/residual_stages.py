"""A small model split into pipeline stages for the pipeline tests: token embedding, residual MLP blocks, softmax
head; every stage holds the same tree (the embedding is used on stage 0, the head on the last stage)."""

import jax
import jax.numpy as jnp
import numpy as np

VOCAB, WIDTH, HIDDEN = 11, 6, 8


def init(key, num_stages, dtype=jnp.float64):
  """Stage parameters stacked on a leading axis of size ``num_stages``."""
  def one(k):
    k1, k2, k3, k4 = jax.random.split(k, 4)
    return {'w1': jax.random.normal(k1, (WIDTH, HIDDEN), dtype) / np.sqrt(WIDTH),
            'b1': 0.1 * jax.random.normal(k2, (HIDDEN,), dtype),
            'w2': jax.random.normal(k3, (HIDDEN, WIDTH), dtype) / np.sqrt(HIDDEN),
            'embed': jax.random.normal(k4, (VOCAB, WIDTH), dtype),
            'head': jax.random.normal(jax.random.fold_in(k4, 1), (WIDTH, VOCAB), dtype) / np.sqrt(WIDTH)}
  return jax.vmap(one)(jax.random.split(key, num_stages))


def first(p, tokens):
  return p['embed'][tokens]


def stage(p, h, s):
  # The stage index enters the computation, so a stage run at the wrong position would show.
  return h + jnp.tanh(h @ p['w1'] + p['b1'] * (1.0 + s)) @ p['w2']


def last(p, h, targets):
  logp = jax.nn.log_softmax(h @ p['head'])
  return -jnp.mean(jnp.take_along_axis(logp, targets[..., None], axis=-1))


def batch(key, num_microbatches, batch_size=2, tokens=5):
  """Token ids and next-token targets, [M, b, t] each."""
  ids = jax.random.randint(key, (num_microbatches, batch_size, tokens + 1), 0, VOCAB)
  return ids[..., :-1], ids[..., 1:]
