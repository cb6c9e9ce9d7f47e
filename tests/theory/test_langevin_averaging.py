"""Langevin averaging: the partial-trace oracle is the first-order stationary mean, and the averaged iterate
beats the last one and approaches the oracle."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from theory import langevin


def _sphere(key, num, d):
  z = jax.random.normal(key, (num, d))
  return z / jnp.linalg.norm(z, axis=1, keepdims=True)


@pytest.mark.parametrize('model, k', [('tensor', 3), ('tensor', 4), ('single_index', 3), ('single_index', 4)])
def test_oracle_is_the_uniform_covariance_with_the_loss(x64, model, k):
  # 2 eps Cov_mu(theta, -L) (odd k) / Cov_mu(theta theta^T, -L) (even k) by Monte Carlo over the sphere.
  d = 5
  make = langevin.tensor_problem if model == 'tensor' else langevin.single_index_problem
  problem = make(jax.random.key(0), d, 50, k)
  z = _sphere(jax.random.key(1), 400_000, d)
  minus_loss = -jax.vmap(langevin.loss_fn(problem, k))(z)
  minus_loss = minus_loss - minus_loss.mean()
  orc = np.asarray(langevin.oracle(problem, k))
  if k == 3:
    mc = np.asarray(z.T @ minus_loss / z.shape[0])
  else:  # up to a multiple of I, which moves no eigenvector: compare the traceless parts
    mc = np.asarray((z.T * minus_loss) @ z / z.shape[0])
    mc, orc = (a - np.trace(a) / d * np.eye(d) for a in (mc, orc))
  cos = np.sum(mc * orc) / (np.linalg.norm(mc) * np.linalg.norm(orc))
  assert cos > 0.995
  if model == 'tensor' and k == 3:  # the exact constant: E_mu[z_j z_a z_b z_c] T_abc = 3 ptr(T)_j / (d (d + 2))
    np.testing.assert_allclose(mc, 3 / (d * (d + 2)) * orc, atol=0.02 * np.abs(orc).max())


def test_averaged_iterate_beats_last_iterate_and_approaches_the_oracle(x64):
  d, k = 8, 3
  steps = 8 * d * d * 20

  @jax.jit
  @jax.vmap
  def run(seed):
    problem = langevin.tensor_problem(jax.random.fold_in(jax.random.key(5), seed), d, 10 * d * d, k)
    return langevin.run_langevin(problem, k, eps=0.25 * d, h=0.5 / d, steps=steps, burn_in=steps // 4, seed=seed)

  out = run(jnp.arange(4))
  average, last, oracle = (np.asarray(out[n]) for n in ('average', 'last', 'oracle'))
  # The last iterate wanders (overlap ~ d^{-1/2} on average, large now and then at d = 8); the average does not.
  assert np.median(average) > np.median(np.abs(last)) + 0.3, (average, last)
  assert np.all(average > 0.85) and np.median(oracle) > 0.9
  assert np.median(np.asarray(out['oracle_cosine'])) > 0.9


def test_threshold_law_of_the_oracle_tensor_k3(x64):
  # Overlap is a function of n / d^2 (d^{ceil(3/2)}), not of n / d^1.5.
  res = langevin.oracle_sweep(3, 'tensor', dims=(8, 32), ratios=(0.3, 3.0), seeds=8)
  med = np.median(res['oracle'], axis=-1)
  assert np.all(np.abs(med[0] - med[1]) < 0.15), med
  assert med[0, 1] > med[0, 0] + 0.2
  with pytest.raises(ValueError, match='k must'):
    langevin.tensor_problem(jax.random.key(0), 4, 10, 5)
