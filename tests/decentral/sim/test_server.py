"""decentral.sim.clocks and decentral.sim.server: laws, schedules against the official code, exact replay."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decentral.sim.clocks import Clock, linear_speeds
from decentral.sim.server import Trace, replay, simulate

FIXTURE = os.path.join(os.path.dirname(__file__), 'fixtures', 'fraboni_schedules.json')


def _matrix(trace):
  out = -np.ones((len(trace.steps), trace.num_clients), int)
  for s in trace.steps:
    out[s.index, list(s.clients)] = s.versions
  return out


@pytest.mark.parametrize('name,scheme,kwargs', [
    ('FL', 'sync', {}), ('Async', 'async', {'group_ties': False}), ('FedBuff-5', 'fedbuff', {'buffer': 5}),
    ('FedFix-0.5', 'fedfix', {'period': 0.5})])
def test_schedules_match_the_official_code(name, scheme, kwargs):
  ref = json.load(open(FIXTURE))
  tau = np.asarray(ref['tau'])
  np.testing.assert_allclose(linear_speeds(ref['num_clients'], 80), tau)
  trace = simulate(Clock(ref['num_clients'], scale=tau), scheme, total_time=ref['T'], **kwargs)
  ours, theirs = _matrix(trace), np.asarray(ref[name]['schedule'])
  times = np.asarray(ref[name]['step_times'])
  if name == 'FL':           # the code lists rounds 0..n-1 with every client on the current model
    times = times[1:]
  elif name == 'FedFix-0.5':  # the code's times are the starts of the intervals; the step is at their end
    times = times + 0.5
  else:                       # a leading 0 in the code
    times = times[1:]
  n = len(ours)
  # the official loop may take one last step past T (it tests the earliest return time <= T before waiting)
  assert len(theirs) - 1 <= n <= len(theirs)
  np.testing.assert_array_equal(ours, theirs[:n])
  np.testing.assert_allclose([s.time for s in trace.steps], times[:n])


def test_laws_are_deterministic_and_have_the_right_scale():
  clock = Clock(4, law='lognormal', scale=[1.0, 2.0, 3.0, 4.0], sigma=0.3, seed=3)
  again = Clock(4, law='lognormal', scale=[1.0, 2.0, 3.0, 4.0], sigma=0.3, seed=3)
  draws = np.array([[clock.compute(i, k) for k in range(600)] for i in range(4)])
  assert np.array_equal(draws[:, :5], [[again.compute(i, k) for k in range(5)] for i in range(4)])
  np.testing.assert_allclose(np.median(draws, axis=1), [1, 2, 3, 4], rtol=0.06)   # LogNormal(0, s) median 1
  mix = Clock(1, straggler_prob=0.25, straggler_factor=10.0, seed=1)
  slow = np.mean([mix.compute(0, k) == 10.0 for k in range(1500)])
  assert abs(slow - 0.25) < 0.04
  with pytest.raises(ValueError, match='law'):
    Clock(2, law='gamma')
  with pytest.raises(ValueError, match='scale'):
    Clock(2, scale=[1.0, -1.0])


def test_dropouts_joins_and_delay_shape_the_trace():
  clock = Clock(3, delay=0.5, dropout=0.3, rejoin_after=2.0, join_times=[0.0, 0.0, 4.0], seed=0)
  trace = simulate(clock, 'async', total_time=30.0)
  kinds = [e[1] for e in trace.events]
  assert 'drop' in kinds and kinds.count('join') > 3
  assert all(s.time >= 4.0 for s in trace.steps if 2 in s.clients)   # client 2 joins at t = 4
  sent = {(e[2], e[3]): e[0] for e in trace.events if e[1] == 'dispatch'}
  for t, kind, c, k, _ in trace.events:   # every arrival is its dispatch plus compute (1) and delay (0.5) later
    if kind == 'arrive':
      assert t == pytest.approx(sent[(c, k)] + 1.5) and clock.duration(c, k) == pytest.approx(1.5)
  dropped = {(e[2], e[3]) for e in trace.events if e[1] == 'drop'}
  assert not any((c, k) in dropped for s in trace.steps for c, k in zip(s.clients, s.tasks))
  sync = simulate(clock, 'sync', total_time=30.0)
  assert all(len(set(s.versions)) == 1 and all(st == 0 for st in sync.staleness()[s.index]) for s in sync.steps)


def test_same_seed_same_trace_and_replay_is_exact(x64):
  clock = Clock(4, law='lognormal', scale=linear_speeds(4, 60), sigma=0.4, delay=0.1, dropout=0.1, seed=7)
  trace = simulate(clock, 'fedbuff', total_time=8.0, buffer=2)
  assert trace.to_json() == simulate(clock, 'fedbuff', total_time=8.0, buffer=2).to_json()
  assert trace.to_json() != simulate(Clock(4, law='lognormal', sigma=0.4, seed=8), 'fedbuff', total_time=8.0,
                                     buffer=2).to_json()
  targets = jnp.asarray(np.random.default_rng(0).normal(size=(4, 3)))

  @jax.jit
  def client(theta, c, k):   # a noisy step toward the client's target, keyed by (client, task)
    noise = jax.random.normal(jax.random.fold_in(jax.random.PRNGKey(c), k), theta.shape)
    return 0.5 * (targets[c] - theta) + 0.01 * noise

  @jax.jit
  def server_fn(theta, state, deltas, mask):
    return theta + jnp.tensordot(mask, jnp.stack(deltas), axes=1) / 2, state + 1

  seen = []
  theta, count = replay(trace, jnp.zeros(3), lambda t, c, k: client(t, c, k), server_fn, 0,
                        on_step=lambda s, t: seen.append(s.index))
  again, _ = replay(Trace.from_json(trace.to_json()), jnp.zeros(3), lambda t, c, k: client(t, c, k), server_fn, 0)
  assert count == len(trace.steps) == len(seen) > 5
  assert np.array_equal(np.asarray(theta), np.asarray(again))
  # the same numbers by hand: keep every version, apply the trace step by step
  versions = [np.zeros(3)]
  for s in trace.steps:
    upd = sum(np.asarray(client(jnp.asarray(versions[v]), c, k)) for c, v, k in zip(s.clients, s.versions, s.tasks))
    versions.append(versions[-1] + upd / 2)
  np.testing.assert_allclose(np.asarray(theta), versions[-1], rtol=1e-12, atol=1e-12)


def test_bad_arguments():
  with pytest.raises(ValueError, match='scheme'):
    simulate(Clock(2), 'gossip', total_time=1.0)
  with pytest.raises(ValueError, match='buffer'):
    simulate(Clock(2), 'fedbuff', total_time=1.0, buffer=3)
  with pytest.raises(ValueError, match='period'):
    simulate(Clock(2), 'fedfix', total_time=1.0)
