"""The single global merge: the schedule by hand, the merge of undiverged models is their average, and the merged
model of local SGD on quadratics is the centralised one.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import decentral
from decentral import axis

N = 6


def _normal(seed, shape):
  """Standard normal test data from NumPy (no PRNG compilation per shape)."""
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def _quadratic_run(tx, b, steps):
  """Worker i minimises |x - b_i|^2 / 2 from its x0; returns the models after every step."""

  def run(x, b_i):
    state = tx.init(x)

    def body(carry, _):
      x, state = carry
      u, state = tx.update(x - b_i, state, x)
      x = optax.apply_updates(x, u)
      return (x, state), x

    return jax.lax.scan(body, (x, state), None, length=steps)[1]

  return run


def test_schedule_by_hand(x64):
  """Gossip on steps 2 and 4 (every 2 from 2), the global merge at step 5, against NumPy float64."""
  lr, topo = 0.3, decentral.ring(N)
  b = np.asarray(_normal(0, (N, 3)), np.float64)
  x0 = np.asarray(_normal(1, (N, 3)), np.float64)
  tx = decentral.single_merge_dsgd(lr, topo, axis_name='workers', merge_at=5, gossip_every=2, gossip_from=2)
  got = np.asarray(axis.run(_quadratic_run(tx, jnp.asarray(b), 5), N)(jnp.asarray(x0), jnp.asarray(b)))
  w, x = np.asarray(topo.mixing, np.float64), x0.copy()
  for t in range(1, 6):
    x = x - lr * (x - b)
    if t == 5:
      x = np.broadcast_to(x.mean(0), x.shape)
    elif t in (2, 4):
      x = w @ x
    np.testing.assert_allclose(got[:, t - 1], x, rtol=1e-12, atol=1e-12)


def test_merge_after_zero_divergence_is_the_average():
  """No local step and no gossip before the merge: every worker ends at the exact average of the starts."""
  x0 = _normal(2, (N, 5))
  tx = decentral.single_merge_dsgd(0.0, None, axis_name='workers', merge_at=3, gossip_every=0)
  got = axis.run(_quadratic_run(tx, jnp.zeros((N, 5)), 3), N)(x0, jnp.zeros((N, 5)))
  np.testing.assert_allclose(got[:, 1], x0, rtol=0, atol=0)  # untouched before the merge
  np.testing.assert_allclose(got[:, 2], np.broadcast_to(np.asarray(x0).mean(0), (N, 5)), rtol=1e-6, atol=1e-6)


def test_merged_local_sgd_recovers_the_centralised_model():
  """On quadratics with a shared start, the average of local SGD models is centralised GD's iterate (linearity):
  the merged model matches the server's although the local models disagree."""
  lr, steps = 0.1, 20
  b = 2.0 * _normal(3, (N, 3))
  x0 = jnp.zeros((N, 3))
  tx = decentral.single_merge_dsgd(lr, None, axis_name='workers', merge_at=steps, gossip_every=0)
  got = np.asarray(axis.run(_quadratic_run(tx, b, steps), N)(x0, b))
  spread = np.abs(got[:, -2] - got[:, -2].mean(0)).max()
  xbar = np.zeros(3)
  for _ in range(steps):
    xbar = xbar - lr * (xbar - np.asarray(b).mean(0))
  assert spread > 0.5
  np.testing.assert_allclose(got[:, -1], np.broadcast_to(xbar, (N, 3)), rtol=1e-5, atol=1e-5)


def test_bad_schedule_is_rejected():
  with pytest.raises(ValueError, match='topology'):
    decentral.scheduled_gossip(None, axis_name='workers', merge_at=4, gossip_every=2)
  with pytest.raises(ValueError, match='gossip_from'):
    decentral.scheduled_gossip(decentral.ring(4), axis_name='workers', merge_at=4, gossip_from=0)
