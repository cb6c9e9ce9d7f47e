"""Variance-corrected averaging: k uncorrelated models lose about k times their variance, the correction restores
it, a gossip step by hand, and correlated models are left (nearly) alone."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import decentral
from decentral import axis


def _normal(seed, shape):
  """Standard normal test data from NumPy (no PRNG compilation per shape)."""
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def _ratios(kernels):
  """var(average) / var and std(corrected) / mean input std, plain and to Xavier, for k stacked kernels."""
  k = kernels.shape[0]
  models = {'kernel': kernels, 'bias': jnp.ones((k, kernels.shape[-1]))}
  fixed = decentral.variance_corrected_mean(models)
  xavier = decentral.variance_corrected_mean(models, target='xavier')
  inputs = jnp.mean(jnp.std(kernels.reshape(k, -1), axis=1))
  return (jnp.var(kernels.mean(0)) / jnp.mean(jnp.var(kernels.reshape(k, -1), axis=1)),
          jnp.std(fixed['kernel']) / inputs, jnp.std(xavier['kernel']), fixed['bias'])


def test_averaging_k_uncorrelated_models_shrinks_the_variance_by_k():
  """Xavier-like layers from independent seeds: var(mean) ~ var / k (within 10%); corrected: var restored; and
  models that are already correlated are left nearly alone."""
  std = np.sqrt(2.0 / (64 + 32))
  ks = (2, 16)
  base = _normal(0, (32, 32))
  correlated = base + 1e-3 * _normal(1, (4, 32, 32))
  kernels = [std * _normal(k, (k, 64, 32)) for k in ks]
  out, near = jax.jit(lambda ks, c: ([_ratios(x) for x in ks], decentral.variance_corrected_mean(c)))(
      kernels, correlated)
  for k, (plain, fixed, xavier, bias) in zip(ks, out):
    assert float(plain * k) == pytest.approx(1.0, rel=0.1)
    assert float(fixed) == pytest.approx(1.0, rel=1e-5)
    assert float(xavier) == pytest.approx(std, rel=1e-5)
    np.testing.assert_allclose(bias, jnp.ones(32))  # 1-D leaves are plainly averaged
  np.testing.assert_allclose(near, correlated.mean(0), atol=1e-4)


def test_gossip_step_by_hand(x64):
  """One variance-corrected gossip step on a ring of 5: mix, then rescale each matrix to the mixed std."""
  n, lr = 5, 0.1
  topo = decentral.ring(n)
  x0 = np.asarray(_normal(2, (n, 6, 4)), np.float64)
  g = np.asarray(_normal(3, (n, 6, 4)), np.float64)
  tx = decentral.variance_corrected_dsgd(lr, topo, axis_name='workers')

  def step(x, gi):
    u, _ = tx.update(gi, tx.init(x), x)
    return optax.apply_updates(x, u)

  got = np.asarray(axis.run(step, n)(jnp.asarray(x0), jnp.asarray(g)))
  w = np.asarray(topo.mixing, np.float64)
  half = x0 - lr * g
  mixed = np.einsum('ij,jab->iab', w, half)
  target = w @ half.reshape(n, -1).std(axis=1)
  mu = mixed.reshape(n, -1).mean(1)[:, None, None]
  want = mu + (mixed - mu) * (target / mixed.reshape(n, -1).std(1))[:, None, None]
  np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_bad_target_is_rejected():
  with pytest.raises(ValueError, match='target'):
    decentral.variance_corrected_mean(jnp.ones((2, 3, 3)), target='he')
