"""decentral.federated.asynchronous: async FedAvg = FedAvg at equal speeds, first steps by hand, the speed bias."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decentral.federated import asynchronous as afl
from decentral.federated import partitions
from decentral.sim.clocks import Clock, linear_speeds
from decentral.sim.server import simulate


def _quadratic_clients(centres, lr, steps):
  """Client i: ``steps`` full-batch GD steps of size lr on f_i = |theta - c_i|^2 / 2 (Delta by hand below)."""
  c = jnp.asarray(centres)

  @jax.jit
  def client(theta, i, k):
    out = theta
    for _ in range(steps):
      out = out - lr * (out - c[i])
    return out - theta

  return lambda theta, i, k: client(theta, i, k)


def _hand_delta(theta, centre, lr, steps):
  return (1 - (1 - lr) ** steps) * (centre - theta)


def test_async_equals_sync_fedavg_when_all_clients_are_equally_fast(x64):
  rng = np.random.default_rng(0)
  centres = rng.normal(size=(5, 3))
  p = np.array([0.1, 0.3, 0.2, 0.25, 0.15])
  client = _quadratic_clients(centres, 0.3, 2)
  clock = Clock(5, scale=2.0)
  theta0 = jnp.asarray(rng.normal(size=3))
  sync, _, strace = afl.run(theta0, client, clock=clock, scheme='sync', total_time=10.0, p=p, server_lr=0.9)
  asyn, _, atrace = afl.run(theta0, client, clock=clock, scheme='async', total_time=10.0, p=p, server_lr=0.9)
  assert len(strace.steps) == len(atrace.steps) == 5
  theta = np.asarray(theta0)
  for _ in range(5):   # FedAvg by hand: theta + eta_g sum_i p_i Delta_i(theta)
    theta = theta + 0.9 * sum(p[i] * _hand_delta(theta, centres[i], 0.3, 2) for i in range(5))
  np.testing.assert_allclose(np.asarray(sync), theta, rtol=1e-13, atol=1e-13)
  np.testing.assert_allclose(np.asarray(asyn), theta, rtol=1e-13, atol=1e-13)


def test_async_equals_sync_with_local_sgd_on_dirichlet_clients(x64):
  rng = np.random.default_rng(1)
  y = rng.integers(0, 4, 200)
  x = rng.normal(size=(200, 8)) + y[:, None]
  data = partitions.pad({'x': x, 'y': y}, partitions.dirichlet(y, 4, 0.3, seed=0, min_size=1))

  def loss(w, batch):
    logits = batch['x'] @ w
    return jnp.mean(jax.nn.logsumexp(logits, -1) - jnp.take_along_axis(logits, batch['y'][:, None], 1)[:, 0])

  client = afl.local_sgd_delta(loss, data, local_steps=2, batch_size=8, learning_rate=0.1, seed=1)
  w0 = jnp.zeros((8, 4))
  kw = dict(clock=Clock(4, scale=1.0), total_time=3.0)
  sync, _, _ = afl.run(w0, client, scheme='sync', **kw)
  asyn, _, _ = afl.run(w0, client, scheme='async', **kw)
  np.testing.assert_allclose(np.asarray(asyn), np.asarray(sync), rtol=1e-12, atol=1e-14)
  assert float(jnp.abs(sync).max()) > 0


def test_first_async_steps_by_hand(x64):
  centres = np.array([[1.0, 0.0], [0.0, 2.0]])
  client = _quadratic_clients(centres, 0.5, 1)
  clock = Clock(2, scale=[1.0, 2.0])
  theta, _, trace = afl.run(jnp.zeros(2), client, clock=clock, scheme='async', total_time=4.0,
                            weights='closed_form')
  # tau = (1, 2): d = (1/1 + 1/2) tau_i / 2 = (0.75, 1.5). Steps: t=1 {0 on v0}, t=2 {0 on v1, 1 on v0},
  # t=3 {0 on v2}, t=4 {0 on v3, 1 on v2}; Delta_i(theta) = 0.5 (c_i - theta).
  assert [(s.clients, s.versions) for s in trace.steps] == [((0,), (0,)), ((0, 1), (1, 0)), ((0,), (2,)),
                                                             ((0, 1), (3, 2))]
  d = np.array([0.75, 1.5])
  v = [np.zeros(2)]
  v.append(v[0] + d[0] * 0.5 * (centres[0] - v[0]))
  v.append(v[1] + d[0] * 0.5 * (centres[0] - v[1]) + d[1] * 0.5 * (centres[1] - v[0]))
  v.append(v[2] + d[0] * 0.5 * (centres[0] - v[2]))
  v.append(v[3] + d[0] * 0.5 * (centres[0] - v[3]) + d[1] * 0.5 * (centres[1] - v[2]))
  np.testing.assert_allclose(np.asarray(theta), v[4], rtol=1e-14)


def test_closed_form_weights_match_the_participation_rates():
  taus = linear_speeds(6, 80)
  clock = Clock(6, scale=taus)
  trace = simulate(clock, 'async', total_time=300.0, group_ties=False)
  np.testing.assert_allclose(afl.aggregation_weights(trace, kind='closed_form', taus=taus),
                             afl.aggregation_weights(trace), rtol=0.02)
  fix = simulate(clock, 'fedfix', total_time=300.0, period=0.3)
  np.testing.assert_allclose(afl.aggregation_weights(fix, kind='closed_form', taus=taus, period=0.3),
                             afl.aggregation_weights(fix), rtol=0.02)
  with pytest.raises(ValueError, match='kind'):
    afl.aggregation_weights(trace, kind='fair')


@pytest.mark.parametrize('scheme,kw', [('async', {}), ('fedbuff', {'buffer': 2}), ('fedfix', {'period': 0.5})])
def test_speed_weights_remove_the_bias_toward_fast_clients(x64, scheme, kw):
  """Paper, Theorem 1 / Section 4: the iterates go to argmin sum_i q_i f_i with q_i ~ E[omega_i]; here
  f_i = |theta - c_i|^2 / 2, so the limit is sum_i q_i c_i. Uncorrected weights give q_i ~ participation (fast
  clients); the participation-corrected weights give the federated optimum sum_i p_i c_i."""
  centres = np.eye(4)   # non-IID: every client pulls to its own corner
  taus = linear_speeds(4, 80)
  clock = Clock(4, scale=taus)
  client = _quadratic_clients(centres, 0.1, 1)
  out = {}
  for weights in ('identical', 'participation'):
    theta, _, trace = afl.run(jnp.zeros(4), client, clock=clock, scheme=scheme, total_time=150.0,
                              weights=weights, server_lr=0.2, **kw)
    out[weights] = np.asarray(theta)
  fed_opt = centres.mean(0)
  pi = trace.participation()
  biased = pi / pi.sum()     # identical weights: q_i proportional to how often client i contributes
  assert np.abs(out['participation'] - fed_opt).max() < 0.02
  assert np.abs(out['identical'] - biased @ centres).max() < 0.02
  assert out['identical'][3] > out['identical'][0] + 0.1   # the fastest client (3) dominates without correction


def test_async_at_equal_speeds_equals_the_round_engines_fedavg(x64):
  """The same rounds through decentral.federated.rounds (FedAvg, full-batch local GD, weights n_i / sum n)."""
  import optax
  from decentral.federated import rounds, sampling
  rng = np.random.default_rng(2)
  y = rng.integers(0, 3, 60)
  x = rng.normal(size=(60, 4)) + y[:, None]
  data = partitions.pad({'x': x, 'y': y}, partitions.dirichlet(y, 3, 0.5, seed=0, min_size=2))

  def per_example(w, batch):
    logits = batch['x'] @ w
    return jax.nn.logsumexp(logits, -1) - jnp.take_along_axis(logits, batch['y'][:, None], 1)[:, 0]

  fed = rounds.Federated(per_example, data, local=rounds.Local(optax.sgd(0.2), steps=3, batch_size=None),
                         sampler=sampling.everyone(3))
  state = fed.init(jnp.zeros((4, 3)), jax.random.key(0))
  for _ in range(4):
    state, _ = fed.round(state)
  xs, ys, counts = (jnp.asarray(data.arrays['x']), jnp.asarray(data.arrays['y']), data.counts)

  @jax.jit
  def client(w, i, k):   # 3 full-batch GD steps on client i's rows
    mask = jnp.arange(xs.shape[1]) < jnp.asarray(counts)[i]
    loss = lambda v: jnp.sum(per_example(v, {'x': xs[i], 'y': ys[i]}) * mask) / jnp.asarray(counts)[i]
    v = w
    for _ in range(3):
      v = v - 0.2 * jax.grad(loss)(v)
    return v - w

  ours, _, trace = afl.run(jnp.zeros((4, 3)), lambda w, i, k: client(w, i, k), clock=Clock(3), scheme='async',
                           total_time=4.0, p=counts / counts.sum())
  assert len(trace.steps) == 4
  # the engine keeps its aggregation weights n_i in float32 (rounds.py), hence 1e-7 and not 1e-12
  np.testing.assert_allclose(np.asarray(ours), np.asarray(state.params), rtol=1e-6, atol=1e-9)
