"""Batch sampling: Poisson batches of fixed shape whose present rows are a Poisson sample (inclusion rate q, sizes
Binomial(N, q)); truncation keeps a uniform subset; shuffling uses every example once per epoch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optim.privacy import sampling


def test_poisson_rows_are_a_poisson_sample():
  n, q, cap, reps = 50, 0.2, 25, 4000
  draw = jax.jit(jax.vmap(lambda k: sampling.poisson_batch(k, n, q, cap)))
  b = draw(jax.random.split(jax.random.key(0), reps))
  idx, mask, size = map(np.asarray, (b.indices, b.mask, b.size))
  assert idx.shape == (reps, cap) and mask.shape == (reps, cap)
  np.testing.assert_array_equal(mask.sum(1), np.minimum(size, cap))
  assert all(len(set(r)) == cap for r in idx[:50])  # distinct indices
  # inclusion frequency of every example ~ q (std of the estimate sqrt(q(1-q)/reps) ~ 0.006)
  counts = np.zeros(n)
  np.add.at(counts, idx[mask], 1)
  np.testing.assert_allclose(counts / reps, q, atol=0.03)
  # sizes ~ Binomial(n, q): mean n q, variance n q (1 - q)
  np.testing.assert_allclose(size.mean(), n * q, rtol=0.03)
  np.testing.assert_allclose(size.var(), n * q * (1 - q), rtol=0.1)


def test_capacity_and_overflow():
  cap = sampling.default_capacity(60000, 256 / 60000)
  assert 256 < cap < 400
  assert sampling.overflow_probability(60000, 256 / 60000, cap) <= 1e-9
  with pytest.raises(ValueError, match='capacity'):
    sampling.poisson_batch(jax.random.key(0), 10, 0.5, 11)


def test_shuffling_visits_every_example_once_per_epoch():
  n, b = 23, 5  # 4 batches per epoch, 3 examples left out each epoch
  it = sampling.shuffled_batches(1, n, b)
  epochs = [np.concatenate([np.asarray(next(it)) for _ in range(4)]) for _ in range(2)]
  for e in epochs:
    assert len(set(e.tolist())) == 20 and e.max() < n
  assert not np.array_equal(epochs[0], epochs[1])
  assert sampling.steps_per_epoch(b / n) == 4
  np.testing.assert_array_equal(sampling.shuffled_batch(jax.random.key(1), 5, n, b), np.asarray(
      jax.jit(sampling.shuffled_batch, static_argnums=(2, 3))(jax.random.key(1), jnp.int32(5), n, b)))
