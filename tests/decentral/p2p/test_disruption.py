"""Disrupted P2P: the mixing matrix after node and link loss, a disrupted run by hand, nothing lost is D-SGD."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import decentral
from decentral import axis

N = 8


def _normal(seed, shape):
  """Standard normal test data from NumPy (no PRNG compilation per shape)."""
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def _quadratic_run(tx, b, steps):
  def run(b_i):
    x = jnp.zeros_like(b_i)
    state = tx.init(x)

    def body(carry, _):
      x, state = carry
      u, state = tx.update(x - b_i, state, x)
      x = optax.apply_updates(x, u)
      return (x, state), x

    return jax.lax.scan(body, (x, state), None, length=steps)[1]

  return run


def test_after_failure_rows(x64):
  topo = decentral.barabasi_albert(N, 2, seed=0)
  w = np.asarray(topo.mixing)
  after = np.asarray(decentral.after_failure(w, failed_nodes=[0], failed_links=[(2, 3)]))
  np.testing.assert_allclose(after.sum(1), np.ones(N))
  assert after[0, 0] == 1 and np.all(after[1:, 0] == 0)  # a failed node is heard by no one
  assert after[2, 3] == 0 and after[3, 2] == 0
  i = 4  # a survivor's row is its old row over what it still hears, rescaled
  kept = w[i].copy()
  kept[0] = 0
  np.testing.assert_allclose(after[i], kept / kept.sum())
  mh = np.asarray(decentral.after_failure(w, failed_nodes=[0], failed_links=[(2, 3)], reweight='metropolis_hastings'))
  np.testing.assert_allclose(mh, mh.T)  # doubly stochastic again
  np.testing.assert_allclose(mh.sum(0), np.ones(N))


def test_disrupted_run_by_hand(x64):
  """D-SGD on a BA graph losing node 5 and link (0, 1) at round 3, against NumPy float64."""
  lr, fail, steps = 0.2, 3, 5
  topo = decentral.barabasi_albert(N, 2, seed=1)
  adj = np.asarray(topo.mixing) > 0
  link = next((i, j) for i in range(N) for j in range(i + 1, N) if adj[i, j] and 5 not in (i, j))
  b = np.asarray(_normal(0, (N, 2)), np.float64)
  tx = decentral.disrupted_dsgd(lr, topo, axis_name='workers', fail_round=fail, failed_nodes=[5],
                                failed_links=[link])
  got = np.asarray(axis.run(_quadratic_run(tx, jnp.asarray(b), steps), N)(jnp.asarray(b)))
  w = np.asarray(topo.mixing, np.float64)
  w2 = np.asarray(decentral.after_failure(w, failed_nodes=[5], failed_links=[link]), np.float64)
  x = np.zeros((N, 2))
  for t in range(1, steps + 1):
    step = lr * (x - b)
    if t >= fail:
      step[5] = 0
    x = (w2 if t >= fail else w) @ (x - step)
    np.testing.assert_allclose(got[:, t - 1], x, rtol=1e-10, atol=1e-12)
  np.testing.assert_allclose(got[5, fail - 2], got[5, -1])  # the lost node is frozen


@pytest.mark.slow
def test_nothing_lost_is_dsgd():
  topo = decentral.erdos_renyi(N, 0.4, seed=2)
  b = _normal(1, (N, 3))
  ours = axis.run(_quadratic_run(decentral.disrupted_dsgd(0.2, topo, axis_name='workers', fail_round=1), b, 4), N)(b)
  dsgd = axis.run(_quadratic_run(decentral.dsgd(0.2, topo, axis_name='workers'), b, 4), N)(b)
  np.testing.assert_allclose(ours, dsgd, rtol=1e-6, atol=1e-6)


def test_bad_failures_are_rejected():
  w = decentral.ring(4).mixing
  with pytest.raises(ValueError, match='failed node'):
    decentral.after_failure(w, failed_nodes=[7])
  with pytest.raises(ValueError, match='failed_links'):
    decentral.after_failure(w, failed_links=[(1, 1)])
  with pytest.raises(ValueError, match='reweight'):
    decentral.after_failure(w, reweight='uniform')
