"""Batch sampling for DP-SGD with shapes that never change: Poisson subsampling as index + mask, and shuffling.

Poisson subsampling (every example joins step t's batch independently with probability q) gives batches of random
size, which under ``jit`` would mean a new compilation per size. Here a batch is always ``capacity`` indices and a
boolean mask: the batch size K ~ Binomial(N, q) is drawn, then ``capacity`` distinct indices uniformly at random,
and the first K are marked present. Given K the set is uniform, so the present indices are exactly a Poisson
sample; when K > capacity (probability :func:`overflow_probability`) a uniform subset of ``capacity`` is kept,
which is the truncated Poisson sampling of ``dp_accounting.TruncatedSubsampledGaussianDpEvent``
(``optim.privacy.epsilon(..., truncated_batch_size=capacity, dataset_size=N)`` accounts for it exactly).

Shuffling: each epoch a fresh permutation, cut into ``N // batch_size`` fixed-size batches (the remainder is
dropped), so every example is used at most once per epoch; its accountant is ``epsilon(..., sampling='shuffle')``.

>>> import jax
>>> b = poisson_batch(jax.random.key(0), num_examples=1000, sampling_rate=0.05, capacity=80)
>>> b.indices.shape, b.mask.shape, int(b.mask.sum()) == int(b.size)
((80,), (80,), True)
"""

from __future__ import annotations

import math
from typing import Iterator, NamedTuple

import jax
import jax.numpy as jnp
from scipy import stats

from optim import checks


class PoissonBatch(NamedTuple):
  indices: jax.Array  # int32 [capacity]: the examples of this step (the first ``size`` are present)
  mask: jax.Array     # bool [capacity]: which rows are present
  size: jax.Array     # int32: the Poisson batch size K before truncation (K > capacity: truncated)


def _check(num_examples: int, sampling_rate: float, capacity: int) -> None:
  checks.check('poisson_batch: sampling_rate', sampling_rate, lambda v: 0 < v <= 1, 'in (0, 1]')
  if not (isinstance(num_examples, int) and num_examples > 0):
    raise ValueError(f'poisson_batch: num_examples must be a positive int, got {num_examples!r}')
  if not (isinstance(capacity, int) and 0 < capacity <= num_examples):
    raise ValueError(f'poisson_batch: capacity must be an int in [1, num_examples={num_examples}], got {capacity!r}')


def poisson_batch(key: jax.Array, num_examples: int, sampling_rate: float, capacity: int) -> PoissonBatch:
  """One Poisson-subsampled batch of fixed shape: ``capacity`` indices, a mask of the present ones.

  Jit-able (``num_examples`` and ``capacity`` static). Rows past the sampled size hold valid but absent indices:
  gather them and pass the mask to ``optim.dp_sgd_aggregate``, which gives them zero weight.
  """
  _check(num_examples, sampling_rate, capacity)
  k_size, k_pick = jax.random.split(key)
  size = jax.random.binomial(k_size, num_examples, sampling_rate).astype(jnp.int32)
  indices = jax.random.choice(k_pick, num_examples, (capacity,), replace=False).astype(jnp.int32)
  return PoissonBatch(indices, jnp.arange(capacity) < size, size)


def default_capacity(num_examples: int, sampling_rate: float, overflow: float = 1e-9) -> int:
  """The smallest capacity whose overflow probability P(Binomial(N, q) > capacity) is at most ``overflow``."""
  return int(min(num_examples, stats.binom.isf(overflow, num_examples, sampling_rate) + 1))


def overflow_probability(num_examples: int, sampling_rate: float, capacity: int) -> float:
  """P(K > capacity) for K ~ Binomial(N, q): the chance a step's Poisson batch is truncated."""
  return float(stats.binom.sf(capacity, num_examples, sampling_rate))


def poisson_batches(seed: int, num_examples: int, sampling_rate: float, capacity: int | None = None,
                    start: int = 0) -> Iterator[PoissonBatch]:
  """Step t's batch is ``poisson_batch(fold_in(key(seed), t), ...)`` for t = start, start + 1, ...

  ``capacity`` defaults to :func:`default_capacity` (overflow probability <= 1e-9 per step).
  """
  capacity = default_capacity(num_examples, sampling_rate) if capacity is None else capacity
  _check(num_examples, sampling_rate, capacity)
  draw = jax.jit(poisson_batch, static_argnums=(1, 3))
  key = jax.random.key(seed)
  t = start
  while True:
    yield draw(jax.random.fold_in(key, t), num_examples, sampling_rate, capacity)
    t += 1


def shuffled_batch(key: jax.Array, step: int | jax.Array, num_examples: int, batch_size: int) -> jax.Array:
  """Step t's indices under shuffling: epoch ``t // (N // B)`` permutes with ``fold_in(key, epoch)``."""
  if not (isinstance(batch_size, int) and 0 < batch_size <= num_examples):
    raise ValueError(f'shuffled_batch: batch_size must be an int in [1, num_examples={num_examples}], '
                     f'got {batch_size!r}')
  per_epoch = num_examples // batch_size
  epoch, within = jnp.divmod(jnp.asarray(step, jnp.int32), per_epoch)
  perm = jax.random.permutation(jax.random.fold_in(key, epoch), num_examples)
  return jax.lax.dynamic_slice(perm, (within * batch_size,), (batch_size,)).astype(jnp.int32)


def shuffled_batches(seed: int, num_examples: int, batch_size: int, start: int = 0) -> Iterator[jax.Array]:
  """The indices of steps start, start + 1, ... under shuffling (:func:`shuffled_batch` with ``key(seed)``)."""
  draw = jax.jit(shuffled_batch, static_argnums=(2, 3))
  key = jax.random.key(seed)
  t = start
  while True:
    yield draw(key, t, num_examples, batch_size)
    t += 1


def steps_per_epoch(sampling_rate: float) -> int:
  """``floor(1 / q)`` (to rounding): the fixed-size batches of one shuffled epoch, q = B / N."""
  return max(1, int(math.floor(1.0 / sampling_rate + 1e-9)))


__all__ = ['PoissonBatch', 'poisson_batch', 'poisson_batches', 'default_capacity', 'overflow_probability',
           'shuffled_batch', 'shuffled_batches', 'steps_per_epoch']
