"""Just One Byte: the first step by hand, regenerated perturbations equal the sender's on every device, joining
and leaving, one byte per perturbation, vmap = shard_map = pmap, and training on a least-squares problem."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax import lax

from decentral import axis
from decentral.federated import zeroth_order as job

N = 8


def _one_step(tx, c, active):
  def step(p, ci, ai):
    s = tx.init(p)
    u, s = tx.update(p, s, p, loss_fn=lambda q: jnp.vdot(ci, q['w']) + ci[0] * q['b'], active=ai)
    return u, s.comm.sent
  return step


def test_first_step_by_hand_with_linear_losses():
  n, lr, eps, scale = 4, 0.5, 1e-3, 0.02
  c = jnp.asarray(np.random.default_rng(0).standard_normal((n, 3)), jnp.float32)
  params = {'w': jnp.zeros((n, 3)), 'b': jnp.zeros((n,))}
  tx = job.just_one_byte(lr, epsilon=eps, scale=scale, stochastic_rounding=False, seed=7)
  u, sent = axis.run(_one_step(tx, c, True), n)(params, c, jnp.ones(n, bool))
  # Worker m: p_m = c_m . z_m['w'] + c_m[0] z_m['b'] (exact: the loss is linear); q_m = round(p_m / scale).
  want_w, want_b = np.zeros(3), 0.0
  for m in range(n):
    z = job.perturbation(jax.random.key(7), m, 0, {'w': np.zeros(3), 'b': np.zeros(())})
    p = float(c[m] @ z['w'] + c[m, 0] * z['b'])
    q = np.clip(np.round(p / scale), -127, 127)
    want_w += -lr * q * scale * np.asarray(z['w']) / n
    want_b += -lr * q * scale * float(z['b']) / n
  for i in range(n):
    np.testing.assert_allclose(u['w'][i], want_w, rtol=2e-3, atol=1e-6)
    np.testing.assert_allclose(u['b'][i], want_b, rtol=2e-3, atol=1e-6)
  assert sent.tolist() == [1] * n


@pytest.mark.parametrize('backend', ['shard_map', 'pmap'])
def test_regenerated_perturbations_equal_the_senders(backend):
  """Each device draws its own direction; every other device rebuilds it from (worker, step) bit for bit."""
  n = 4
  params = {'w': jnp.zeros((3, 2)), 'b': jnp.zeros(4)}
  key = jax.random.key(11)

  def worker(_):
    me = lax.axis_index('workers')
    own = job.perturbation(key, me, 5, params, 1)           # what the sender perturbs with
    sent = jax.tree.map(lambda v: lax.all_gather(v, 'workers'), own)
    regen = [job.perturbation(key, m, 5, params, 1) for m in range(n)]  # what this receiver rebuilds
    return jax.tree.map(lambda s, *r: jnp.all(s == jnp.stack(r)), sent, *regen), own

  same, own = axis.run(worker, n, backend=backend)(jnp.zeros(n))
  assert all(bool(np.all(v)) for v in jax.tree.leaves(same))
  host = job.perturbation(key, 3, 5, params, 1)  # and the host agrees with device 3
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(a[3], b), own, host)


def test_workers_join_and_leave():
  n = 4
  c = jnp.asarray(np.random.default_rng(1).standard_normal((n, 3)), jnp.float32)
  params = {'w': jnp.zeros((n, 3)), 'b': jnp.zeros((n,))}
  tx = job.just_one_byte(0.5, scale=0.02, stochastic_rounding=False, seed=7)
  active = jnp.array([True, False, True, False])
  u, sent = axis.run(_one_step(tx, c, active), n)(params, c, active)
  assert sent.tolist() == [1, 0, 1, 0]
  # Same as a two-worker run of workers 0 and 2 (their seeds are their slots): average over those present.
  want_w = 0.0
  for m in (0, 2):
    z = job.perturbation(jax.random.key(7), m, 0, {'w': np.zeros(3), 'b': np.zeros(())})
    p = float(c[m] @ z['w'] + c[m, 0] * z['b'])
    want_w = want_w - 0.5 * np.round(p / 0.02) * 0.02 * np.asarray(z['w']) / 2
  np.testing.assert_allclose(u['w'][1], want_w, rtol=2e-3, atol=1e-6)  # absent workers apply it too
  u0, sent0 = axis.run(_one_step(tx, c, False), n)(params, c, jnp.zeros(n, bool))
  assert sent0.tolist() == [0] * n and float(jnp.abs(u0['w']).max()) == 0.0


def test_trains_least_squares_and_backends_agree():
  rng = np.random.default_rng(2)
  d = 6
  a = jnp.asarray(rng.standard_normal((N, 32, d)), jnp.float32)
  b = a @ jnp.asarray(rng.standard_normal(d), jnp.float32)
  tx = job.just_one_byte(0.05, epsilon=1e-3, scale=0.2, num_perturbations=2)

  def train(p, ai, bi):
    loss = lambda q: jnp.mean((ai @ q - bi) ** 2)

    def body(carry, _):
      p, s = carry
      u, s = tx.update(p, s, p, loss_fn=loss)
      return (optax.apply_updates(p, u), s), s.comm.sent
    (p, s), sent = lax.scan(body, (p, tx.init(p)), None, length=150)
    return p, sent

  p0 = jnp.zeros((N, d))
  p, sent = axis.run(train, N)(p0, a, b)
  full = lambda q: float(jnp.mean((a.reshape(-1, d) @ q - b.reshape(-1)) ** 2))
  assert full(p[0]) < 0.05 * full(p0[0])
  np.testing.assert_allclose(p, np.broadcast_to(p[:1], p.shape), rtol=1e-5, atol=1e-6)  # replicas agree
  assert int(sent.sum()) == N * 150 * 2  # two bytes per worker and step
  for backend in ('shard_map', 'pmap'):
    q, _ = axis.run(train, N, backend=backend)(p0, a, b)
    np.testing.assert_allclose(q, p, rtol=1e-4, atol=1e-5)


def test_bad_hyperparameters():
  with pytest.raises(ValueError, match='scale'):
    job.just_one_byte(0.1, scale=0.0)
  with pytest.raises(ValueError, match='num_perturbations'):
    job.just_one_byte(0.1, num_perturbations=0)
  tx = job.just_one_byte(0.1, axis_name=None)
  with pytest.raises(ValueError, match='loss_fn'):
    tx.update(jnp.zeros(2), tx.init(jnp.zeros(2)), jnp.zeros(2))
