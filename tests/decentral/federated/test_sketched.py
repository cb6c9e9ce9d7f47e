"""Sketched FedAvg and its leakage: R is the count sketch's linear map (R^T R x = the mean decoder), averaging in
sketch space is exact, E[R^T R] = I over the hashes, and the server inverts a sketched one-example gradient of a
softmax-regression client exactly, unless Gaussian noise is added."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decentral.compression.sketches import count_sketch
from decentral.federated import sketched as sk


def test_sketch_matrix_is_the_count_sketch_and_unbiased(x64):
  d, key = 12, jax.random.key(0)
  r = sk.sketch_matrix(key, d, rows=2, cols=5)
  x = jnp.asarray(np.random.default_rng(0).normal(size=d))
  comp = count_sketch(2, 5, decoder='mean')
  np.testing.assert_allclose(r.T @ (r @ x), comp.decompress(comp.compress(x, key), (d,), x.dtype), rtol=1e-6,
                             atol=1e-6)
  # by hand: each coordinate has exactly one bucket per row, signed +-1/sqrt(rows)
  np.testing.assert_allclose(np.sort(np.abs(np.asarray(r)).sum(0)), np.full(d, 2 / np.sqrt(2)))
  rs = jax.vmap(lambda k: sk.sketch_matrix(k, d, rows=1, cols=4))(jax.random.split(jax.random.key(3), 400))
  mean_rtr = np.asarray(jnp.mean(jnp.einsum('kbi,kbj->kij', rs, rs), 0))
  np.testing.assert_allclose(mean_rtr, np.eye(d), atol=0.2)


def test_sketched_mean_equals_desketched_average(x64):
  deltas = jnp.asarray(np.random.default_rng(1).normal(size=(3, 10)))
  key = sk.sketch_round_key(jax.random.key(2), 5)
  out, nbytes = sk.sketched_mean(deltas, key, rows=1, cols=4)
  r = sk.sketch_matrix(key, 10, rows=1, cols=4)
  np.testing.assert_allclose(out, r.T @ jnp.mean(r @ deltas.T, 1), rtol=1e-5, atol=1e-6)
  assert nbytes == 4 * 8 + 8   # the float64 table and the key


def test_linear_gradient_by_hand(x64):
  w, b, a = jnp.array([[1.0, 0.0], [0.0, 1.0]]), jnp.zeros(2), jnp.array([2.0, 0.0])
  p = np.exp([2.0, 0.0]) / np.exp([2.0, 0.0]).sum()
  v = p - np.array([0.0, 1.0])
  np.testing.assert_allclose(sk.linear_gradient(a, 1, w, b), np.concatenate([np.outer(v, [2.0, 0.0]).ravel(), v]))


def test_inversion_recovers_the_example_and_noise_defends(x64):
  rng = np.random.default_rng(0)
  p, c = 8, 3
  w, b = jnp.asarray(0.3 * rng.normal(size=(c, p))), jnp.zeros(c)
  a, y = jnp.asarray(rng.uniform(size=p)), 2
  r = sk.sketch_matrix(jax.random.key(1), c * p + c, rows=1, cols=16)   # b = 16 < d = 27
  s = r @ sk.linear_gradient(a, y, w, b)
  err = lambda est: float(jnp.linalg.norm(est - a) / jnp.linalg.norm(a))
  assert err(sk.invert_sketched_gradient(s, r, y, c)) < 1e-8
  noisy = sk.noisy_sketch(s, jax.random.key(3), 1.0)
  assert err(sk.invert_sketched_gradient(noisy, r, y, c)) > 0.3
  with pytest.raises(ValueError, match='sigma'):
    sk.noisy_sketch(s, jax.random.key(3), -1.0)
