"""MoDeST (arXiv 2302.13837 v1): the hash sample, one round against FedAvg by hand (unweighted and weighted by data
size), exact replay, churn."""

import hashlib
import math

import jax.numpy as jnp
import numpy as np
import pytest

from decentral.p2p import modest
from decentral.sim.clocks import Clock

N, DIM, LR, STEPS = 12, 3, 0.1, 2


def _problem(seed=0):
  rng = np.random.default_rng(seed)
  a = rng.normal(size=(N, 8, DIM))
  b = rng.normal(size=(N, 8))
  return a, b


def _train_fn(a, b):
  a, b = jnp.asarray(a), jnp.asarray(b)

  def train(w, node, task):
    del task
    for _ in range(STEPS):   # least squares, full-batch gradient steps on the node's data
      w = w - LR * a[node].T @ (a[node] @ w - b[node]) / a.shape[1]
    return w
  return train


def test_sample_is_the_md5_order_of_the_live_set_and_the_same_on_every_node():
  live = [0, 2, 3, 5, 7, 8, 11]
  expected = sorted(live, key=lambda i: hashlib.md5(f'{i}-4'.encode()).digest())[:3]
  views = [list(live), live[::-1], live[3:] + live[:3], live + [2, 5]]   # each node lists its view differently
  assert all(modest.sample(4, v, 3) == expected for v in views)
  assert modest.aggregators(4, live, 3, 2) == expected[:2]
  assert modest.sample(5, live, 3) != expected or modest.sample(6, live, 3) != expected   # rounds differ
  assert modest.sample(0, [1, 2], 5) == sorted([1, 2], key=lambda i: hashlib.md5(f'{i}-0'.encode()).digest())


def test_one_round_without_churn_is_fedavg_over_the_sampled_trainers(x64):
  a, b = _problem()
  trace = modest.simulate(Clock(N, law='lognormal', sigma=0.3, seed=1), sample_size=4, num_aggregators=2,
                          success_fraction=1.0, timeout=100.0, rounds=1, model_bytes=DIM * 8)
  r = trace.rounds[0]
  assert r.contributors == tuple(sorted(modest.sample(0, range(N), 4)))
  w0 = np.ones(DIM)
  out = modest.replay(trace, jnp.asarray(w0), _train_fn(a, b))
  locals_ = []
  for j in r.contributors:   # FedAvg by hand: each trainer's local steps, then the plain mean
    w = w0.copy()
    for _ in range(STEPS):
      w = w - LR * a[j].T @ (a[j] @ w - b[j]) / a.shape[1]
    locals_.append(w)
  np.testing.assert_allclose(np.asarray(out), np.mean(locals_, axis=0), rtol=1e-13, atol=1e-14)
  led = trace.ledger()   # round 0: nobody serves the model; 4 trainers each send it to 2 aggregators
  assert led.total == 4 * 2 * DIM * 8
  sizes = np.arange(1.0, N + 1)   # weighted by data sizes: FedAvg's weighting
  weighted = modest.replay(trace, jnp.asarray(w0), _train_fn(a, b), weights=sizes)
  want = np.average(locals_, axis=0, weights=sizes[list(r.contributors)])
  np.testing.assert_allclose(np.asarray(weighted), want, rtol=1e-13, atol=1e-14)
  with pytest.raises(ValueError, match='replay: weights'):
    modest.replay(trace, jnp.asarray(w0), _train_fn(a, b), weights=-sizes)


def test_success_fraction_takes_the_first_arrivals():
  clock = Clock(N, scale=np.linspace(1.0, 2.0, N))
  trace = modest.simulate(clock, sample_size=6, num_aggregators=1, success_fraction=0.5, timeout=10.0, rounds=3)
  for r in trace.rounds:
    fastest = sorted(r.trainers)[:3]   # node i's time grows with i
    assert r.contributors == tuple(fastest)
    assert r.end - r.start == pytest.approx(clock.duration(fastest[-1], 0))


def test_replay_is_exact_and_the_trace_deterministic():
  a, b = _problem(1)
  clock = Clock(N, law='exponential', rate=2.0, dropout=0.2, seed=3)
  kwargs = dict(sample_size=5, num_aggregators=2, success_fraction=0.6, timeout=3.0, rounds=6, model_bytes=24)
  trace = modest.simulate(clock, **kwargs)
  again = modest.simulate(Clock(N, law='exponential', rate=2.0, dropout=0.2, seed=3), **kwargs)
  assert trace.rounds == again.rounds
  assert modest.Trace.from_json(trace.to_json()).rounds == trace.rounds
  w0 = jnp.ones(DIM, jnp.float32)
  first = modest.replay(trace, w0, _train_fn(a, b))
  second = modest.replay(modest.Trace.from_json(trace.to_json()), w0, _train_fn(a, b))
  np.testing.assert_array_equal(np.asarray(first), np.asarray(second))


def test_churn_and_dead_aggregators_time_out_instead_of_deadlocking():
  clock = Clock(N, dropout=0.3, rejoin_after=2.0, seed=0)
  half = [(i, 2.5, math.inf) for i in range(0, N, 2)]   # half the nodes leave for good at t = 2.5
  trace = modest.simulate(clock, sample_size=4, num_aggregators=1, success_fraction=1.0, timeout=4.0, rounds=12,
                          offline=half)
  assert len(trace.rounds) == 12 and math.isfinite(trace.wall_clock())
  assert all(r.end <= r.start + 4.0 for r in trace.rounds)
  later = [r for r in trace.rounds if r.start >= 2.5]
  assert later and all(j % 2 == 1 for r in later for j in r.trainers)   # only the survivors are sampled
  assert any(0 < len(r.contributors) < 4 for r in trace.rounds)          # dropouts: partial rounds after timeout
  # every aggregator gone: every round fails at its timeout and the model is kept
  gone = [(i, 0.5, math.inf) for i in range(N)]
  dead = modest.simulate(Clock(N), sample_size=3, timeout=2.0, rounds=3, offline=gone)
  assert [r.failed for r in dead.rounds] == [True] * 3 and dead.wall_clock() == 6.0
  w0 = jnp.ones(DIM)
  np.testing.assert_array_equal(np.asarray(modest.replay(dead, w0, _train_fn(*_problem()))), np.asarray(w0))


def test_bad_arguments_raise():
  with pytest.raises(ValueError, match='modest: success_fraction'):
    modest.simulate(Clock(4), sample_size=2, success_fraction=0.0, timeout=1.0, rounds=1)
  with pytest.raises(ValueError, match='num_aggregators <= sample_size'):
    modest.simulate(Clock(4), sample_size=2, num_aggregators=3, timeout=1.0, rounds=1)
