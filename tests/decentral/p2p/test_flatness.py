"""DFedSAM and DFedSAM-MGS: the first round by hand, the reduction to D-SGD, and MGS's consensus gain.

Agreement under vmap, shard_map and pmap is checked by tests/decentral/test_conformance_decentral.py.
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


def _logcosh_run(tx, b, steps):
  """Worker i minimises sum log cosh(x - b_i) (not quadratic: SAM's second gradient differs) from x = 0."""

  def run(b_i):
    loss_fn = lambda x: jnp.sum(jnp.log(jnp.cosh(x - b_i)))
    x = jnp.zeros_like(b_i)
    state = tx.init(x)

    def body(carry, _):
      x, state = carry
      u, state = tx.update(jax.grad(loss_fn)(x), state, x, loss_fn=loss_fn)
      x = optax.apply_updates(x, u)
      return (x, state), x

    return jax.lax.scan(body, (x, state), None, length=steps)[1]

  return run


def test_first_round_by_hand(x64):
  """K = 2 SAM steps then Q = 2 gossip steps on a ring, against the paper's equations in NumPy float64."""
  lr, rho, k, q = 0.3, 0.2, 2, 2
  topo = decentral.ring(N)
  b = np.asarray(_normal(0, (N, 3)), np.float64)
  tx = decentral.dfedsam(lr, topo, rho=rho, local_steps=k, gossip_steps=q, axis_name='workers')
  got = np.asarray(axis.run(_logcosh_run(tx, jnp.asarray(b), k), N)(jnp.asarray(b)))  # (N, k, 3)

  grad = lambda y, bi: np.tanh(y - bi)
  y = np.zeros((N, 3))
  for _ in range(k):
    g = np.stack([grad(y[i], b[i]) for i in range(N)])
    eps = rho * g / np.linalg.norm(g, axis=1, keepdims=True)
    y = y - lr * np.stack([grad(y[i] + eps[i], b[i]) for i in range(N)])
  want = np.linalg.matrix_power(np.asarray(topo.mixing, np.float64), q) @ y
  np.testing.assert_allclose(got[:, -1], want, rtol=1e-10, atol=1e-12)
  # after the first local step the models are local: no gossip yet
  assert not np.allclose(got[:, 0], got[:, 0].mean(0))


def test_rho_zero_and_one_gossip_is_dsgd():
  """DFedSAM with rho = 0, Q = 1, K = 1 is D-SGD, step for step."""
  topo = decentral.erdos_renyi(N, 0.5, seed=1)
  b = _normal(2, (N, 4))
  ours = axis.run(_logcosh_run(decentral.dfedsam(0.2, topo, rho=0.0, axis_name='workers'), b, 5), N)(b)
  dsgd = axis.run(_logcosh_run(decentral.dsgd(0.2, topo, axis_name='workers'), b, 5), N)(b)
  np.testing.assert_allclose(ours, dsgd, rtol=1e-6, atol=1e-7)


def test_more_gossip_steps_give_more_consistent_models():
  """The consensus distance (1/n) sum |x_i - xbar|^2 after a round shrinks as Q grows (like lambda^(2Q)): Q = 4
  against Q = 1."""
  b = 3.0 * _normal(3, (N, 4))
  dist = []
  for q in (1, 4):
    tx = decentral.dfedsam(0.2, decentral.ring(N), rho=0.05, local_steps=3, gossip_steps=q, axis_name='workers')
    x = np.asarray(axis.run(_logcosh_run(tx, b, 9), N)(b))[:, -1]
    dist.append(float(np.mean(np.sum((x - x.mean(0)) ** 2, axis=1))))
  assert dist[0] > 2 * dist[1]


def test_sam_gradient_needs_the_loss_and_rejects_bad_rho():
  tx = decentral.sam_gradient(0.1)
  with pytest.raises(ValueError, match='loss_fn'):
    tx.update(jnp.ones(2), tx.init(jnp.ones(2)), jnp.ones(2))
  with pytest.raises(ValueError, match='rho'):
    decentral.sam_gradient(-1.0)
  with pytest.raises(ValueError, match='gossip_steps'):
    decentral.multi_gossip(decentral.ring(4), axis_name='workers', gossip_steps=0)
