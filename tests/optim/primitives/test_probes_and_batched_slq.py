"""Packed Rademacher probes, Hutchinson on pytrees leaf by leaf, and SLQ with the probes' Lanczos batched."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from optim.primitives import estimators, spectral


def test_packed_rademacher_signs_are_independent_and_fair():
  z = np.asarray(estimators.rademacher(jax.random.key(0), (4000, 40), jnp.float32))
  assert set(np.unique(z)) == {-1.0, 1.0}
  # E[z z^T] = I: every entry of the sample second moment is within 5 standard errors (1/sqrt(4000)).
  moment = z.T @ z / len(z)
  assert np.max(np.abs(moment - np.eye(40))) < 5 / np.sqrt(len(z))
  assert np.max(np.abs(z.mean(0))) < 5 / np.sqrt(len(z))


def test_hutchinson_on_a_pytree_is_exact_for_diagonal_operators_and_blocks_agree(x64):
  # Rademacher probes are exact on a diagonal operator whatever the draw; blocks of probes reuse the same draw.
  scale = {'a': jnp.arange(1.0, 7.0).reshape(2, 3), 'b': jnp.array(5.0), 'c': jnp.arange(4.0)}
  matvec = lambda v: jax.tree.map(jnp.multiply, scale, v)
  params = jax.tree.map(jnp.zeros_like, scale)
  run = jax.jit(lambda key, size: estimators.hutchinson_trace(matvec, params, key, 8, batch_size=size),
                static_argnums=1)
  for size in (None, 3):
    est, err = run(jax.random.key(1), size)
    np.testing.assert_allclose(est, 21.0 + 5.0 + 6.0, rtol=1e-12)
    assert float(err) == 0.0
  diagonal, _ = estimators.hutchinson_diagonal(matvec, params, jax.random.key(2), 4)
  jax.tree.map(lambda d, s: np.testing.assert_allclose(d, s, rtol=1e-12), diagonal, scale)


@functools.partial(jax.jit, static_argnames=('batch_size',))
def _slq_diag(d, key, batch_size):
  return spectral.slq(lambda v: d * v, jnp.zeros_like(d), key, 6, 5, batch_size=batch_size)


def test_batched_slq_reproduces_moments_probe_by_probe(x64):
  # For A = diag(d) and a Rademacher probe v, v^T A^p v / n = mean(d^p) exactly, so each probe's 6-point Gauss
  # rule must give mean(d^p) for every p <= 11: a probe whose Lanczos mixed with another's would not.
  d = np.random.default_rng(0).uniform(0.5, 2.0, 30)
  together = jax.tree.map(np.asarray, _slq_diag(d, jax.random.key(3), None))
  in_blocks = jax.tree.map(np.asarray, _slq_diag(d, jax.random.key(3), 2))
  for q in (together, in_blocks):
    assert q.nodes.shape == (5, 6)
    for p in range(12):
      np.testing.assert_allclose(np.sum(q.weights * q.nodes ** p, axis=1), np.mean(d ** p), rtol=1e-9)
  # Blocks of 2 (with a padded last block) draw the same probes as all five at once.
  np.testing.assert_allclose(in_blocks.nodes, together.nodes, rtol=1e-10)
  np.testing.assert_allclose(in_blocks.weights, together.weights, rtol=1e-8, atol=1e-12)
