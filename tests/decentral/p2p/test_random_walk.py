"""The self-repellent random walk and SA-SRRW: the base chain, the kernel and first token steps by hand (float64),
alpha = 0 is the base walk (its one-step and long-run laws tested statistically), repellence reduces the
visit-measure error."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from decentral.p2p import random_walk as rw

ADJ = np.array([[0, 1, 1, 1, 0],
                [1, 0, 1, 0, 0],
                [1, 1, 0, 0, 1],
                [1, 0, 0, 0, 1],
                [0, 0, 1, 1, 0]])
TARGET = np.array([0.1, 0.15, 0.2, 0.25, 0.3])


def test_metropolis_hastings_walk_is_reversible_for_its_target():
  p = rw.metropolis_hastings_walk(ADJ, TARGET)
  np.testing.assert_allclose(p.sum(1), 1.0)
  assert np.all(p >= 0)
  flows = TARGET[:, None] * p
  np.testing.assert_allclose(flows, flows.T, atol=1e-15)  # detailed balance, hence mu P = mu
  deg = ADJ.sum(1)
  uniform = rw.metropolis_hastings_walk(ADJ)
  for i, j in zip(*np.nonzero(ADJ)):
    assert uniform[i, j] == pytest.approx(min(1 / deg[i], 1 / deg[j]))


def test_kernel_by_hand(x64):
  p = rw.metropolis_hastings_walk(ADJ, TARGET)
  x = np.array([0.3, 0.1, 0.25, 0.05, 0.3])
  alpha = 2.0
  weights = p * (x / TARGET)[None, :] ** (-alpha)
  expected = weights / weights.sum(1, keepdims=True)
  np.testing.assert_allclose(rw.self_repellent_kernel(jnp.asarray(p), jnp.asarray(TARGET), jnp.asarray(x), alpha),
                             expected, rtol=1e-12)
  np.testing.assert_allclose(rw.self_repellent_kernel(jnp.asarray(p), jnp.asarray(TARGET), jnp.asarray(x), 0.0),
                             p, rtol=1e-12, atol=1e-15)


def test_alpha_zero_moves_by_the_base_chain():
  """One move from node 0 for 5000 independent walkers: chi-square against row 0 of P."""
  p = rw.metropolis_hastings_walk(ADJ, TARGET)
  pj, mu = jnp.asarray(p, jnp.float32), jnp.asarray(TARGET, jnp.float32)
  keys = jax.random.split(jax.random.key(0), 5000)
  x = jnp.asarray([0.5, 0.1, 0.1, 0.2, 0.1])  # any visit measure: alpha = 0 ignores it
  step = jax.jit(jax.vmap(lambda k: rw.walk_step(rw.WalkState(jnp.int32(0), x, jnp.int32(0), k), pj, mu,
                                                  alpha=0.0).node))
  counts = np.bincount(np.asarray(step(keys)), minlength=5)
  support = p[0] > 0
  assert counts[~support].sum() == 0
  assert stats.chisquare(counts[support], 5000 * p[0][support]).pvalue > 1e-3


@jax.jit
def _final_visits(alpha, keys):
  """The visit measure after 1500 moves of independent walkers (alpha traced: one compilation for both)."""
  p = jnp.asarray(rw.metropolis_hastings_walk(ADJ, TARGET), jnp.float32)
  mu = jnp.asarray(TARGET, jnp.float32)

  def walk(key):
    state = rw.walk_init(5, seed=key)
    return jax.lax.fori_loop(0, 1500, lambda _, s: rw.walk_step(s, p, mu, alpha=alpha), state).visits

  return jax.vmap(walk)(keys)


def test_alpha_zero_visit_law_is_the_target_and_repellence_sharpens_it():
  """The empirical measure of the base walk converges to mu (the mean over 32 walks within 4 standard errors);
  at alpha = 10 its mean squared error is smaller (the SRRW's variance reduction, arXiv 2305.05097)."""
  base = np.asarray(_final_visits(0.0, jax.random.split(jax.random.key(0), 32)), np.float64)
  err = base.mean(0) - TARGET
  assert np.all(np.abs(err) < 4 * base.std(0, ddof=1) / np.sqrt(32) + 1e-3)
  repelled = np.asarray(_final_visits(10.0, jax.random.split(jax.random.key(1), 32)), np.float64)
  mse_base = ((base - TARGET) ** 2).sum(1).mean()
  mse_rep = ((repelled - TARGET) ** 2).sum(1).mean()
  assert mse_rep < 0.3 * mse_base


def test_sa_srrw_first_steps_by_hand(x64):
  """Three token moves: replay the walk with walk_step, then x and theta by the paper's recursions in numpy."""
  p = rw.metropolis_hastings_walk(ADJ)
  mu = np.full(5, 0.2)
  c = np.array([[1.0, -2.0], [0.5, 0.0], [3.0, 1.0], [-1.0, 2.0], [0.0, 0.0]])
  a, b, scale, alpha = 0.7, 0.9, 0.5, 3.0
  grad = lambda th, i, k: th - jnp.asarray(c)[i]
  theta, walk = rw.sa_srrw(grad, jnp.zeros(2), p, alpha=alpha, num_steps=3, visit_exponent=a, step_exponent=b,
                           step_scale=scale, start=2, seed=7)
  state = rw.walk_init(5, start=2, seed=7, dtype=jnp.float64)
  step = jax.jit(lambda s: rw.walk_step(s, jnp.asarray(p), jnp.asarray(mu), alpha=alpha, visit_exponent=a))
  x, th = np.full(5, 0.2), np.zeros(2)
  for n in range(3):
    kernel_row = p[state.node] * (x / mu) ** (-alpha)
    state = step(state)
    node = int(state.node)
    assert kernel_row[node] > 0
    x = x + (n + 2.0) ** (-a) * (np.eye(5)[node] - x)
    th = th - scale * (n + 2.0) ** (-b) * (th - c[node])
    np.testing.assert_allclose(state.visits, x, rtol=1e-13)
  assert int(walk.node) == node
  np.testing.assert_allclose(walk.visits, x, rtol=1e-13)
  np.testing.assert_allclose(theta, th, rtol=1e-13)


def test_bad_arguments_name_the_function():
  p = rw.metropolis_hastings_walk(ADJ)
  with pytest.raises(ValueError, match='sa_srrw: alpha'):
    rw.sa_srrw(lambda t, i, k: t, 0.0, p, alpha=-1.0, num_steps=2)
  with pytest.raises(ValueError, match='sa_srrw: step_exponent'):
    rw.sa_srrw(lambda t, i, k: t, 0.0, p, alpha=1.0, num_steps=2, step_exponent=0.4)
  with pytest.raises(ValueError, match='metropolis_hastings_walk: target'):
    rw.metropolis_hastings_walk(ADJ, np.ones(5))
