"""decentral.sim.gradient_coding: exact decoding under every tolerated straggler pattern, failure beyond it."""

import itertools

import numpy as np
import pytest

from decentral.sim import gradient_coding as gc
from decentral.sim.clocks import Clock


def _least_squares_unit_grads(jobs, units, d, seed=0):
  """Job t's gradient of 0.5 |A x_t - b|^2 split by row blocks: unit u's gradient is A_u^T (A_u x_t - b_u)."""
  rng = np.random.default_rng(seed)
  a = rng.normal(size=(units, 3, d))
  b = rng.normal(size=(units, 3))
  xs = rng.normal(size=(jobs, d))
  return np.stack([np.einsum('urd,ur->ud', a, np.einsum('urd,d->ur', a, x) - b) for x in xs])


def _enumerate(scheme, jobs):
  """Every straggler pattern over the scheme's rounds; counts by (follows the model, decoded)."""
  g = _least_squares_unit_grads(jobs, scheme.units, 2)
  full = g.sum(axis=1)
  counts = {'tolerated': 0, 'tolerated_failed': 0, 'beyond_decoded': 0, 'beyond_failed': 0}
  for pattern in gc.all_patterns(scheme.rounds(jobs), scheme.n):
    tolerated = gc.is_bursty(pattern, scheme.B, scheme.W, scheme.lam)
    result = scheme.run(pattern, g)
    for t in range(jobs):
      out = result.gradients[t]
      if out is not None:   # whatever the pattern, a returned gradient is the exact one
        np.testing.assert_allclose(out, full[t], rtol=1e-12, atol=1e-12)
        assert result.rounds[t] <= t + scheme.delay
      key = ('tolerated' if tolerated else 'beyond') + ('_failed' if out is None else '_decoded')
      counts[key.replace('tolerated_decoded', 'tolerated')] += 1
  return counts


def test_gc_decodes_every_pattern_of_at_most_s_stragglers():
  code = gc.gradient_code(6, 2)
  g = _least_squares_unit_grads(1, 6, 3)
  for pattern in itertools.product([False, True], repeat=6):
    pattern = np.array([pattern])
    out = code.run(pattern, g).gradients[0]
    if pattern.sum() <= 2:
      np.testing.assert_allclose(out, g[0].sum(0), rtol=1e-12)
    elif out is not None:
      np.testing.assert_allclose(out, g[0].sum(0), rtol=1e-12)
  assert code.run(np.array([[True, True, True, False, False, False]]), g).gradients[0] is None
  assert code.load == pytest.approx(3 / 6)
  np.testing.assert_array_equal(gc.frc_code(5, 1).sum(1), [3, 3, 3, 2, 2])   # n not a multiple: groups of 3, 2


@pytest.mark.parametrize('n,B,W,lam,jobs', [(2, 1, 2, 1, 3), (2, 2, 3, 1, 2), (3, 1, 3, 2, 2)])
def test_m_sgc_decodes_every_tolerated_pattern_and_fails_beyond(n, B, W, lam, jobs):
  scheme = gc.m_sgc(n, B, W, lam)
  counts = _enumerate(scheme, jobs)
  assert counts['tolerated_failed'] == 0 and counts['tolerated'] > 0
  assert counts['beyond_failed'] > 0 and counts['beyond_decoded'] > 0   # failure is reported, never a guess
  assert scheme.delay == W - 2 + B
  assert scheme.load == pytest.approx((lam + 1) * (W - 1 + B) / (n * (B + (W - 1) * (lam + 1))))


def test_sr_sgc_decodes_every_tolerated_pattern():
  scheme = gc.sr_sgc(4, 1, 3, 2)   # s = ceil(1 * 2 / 3) = 1, T = B = 1
  assert scheme.s == 1 and scheme.delay == 1 and scheme.load == pytest.approx(2 / 4)
  counts = _enumerate(gc.sr_sgc(2, 1, 2, 1), 3)
  assert counts['tolerated_failed'] == 0 and counts['beyond_failed'] > 0


def test_m_sgc_first_rounds_by_hand():
  """n = 2, B = 1, W = 2, lambda = 1: T = 1, two slots per round (D1 of job r, D2 of job r - 1), chunks of 2 units.
  Worker 0 straggles in round 0: in round 1 its D2 slot of job 0 recomputes its missing D1 chunk instead, so
  job 0's D2 group is decoded from worker 1's coded task alone."""
  scheme = gc.m_sgc(2, 1, 2, 1)
  assert scheme.units == 2 * 1 * 2 + 1 * 2
  pattern = np.array([[True, False], [False, False], [False, False]])
  g = _least_squares_unit_grads(2, scheme.units, 2)
  result = scheme.run(pattern, g)
  assert result.rounds == [1, 2]
  np.testing.assert_allclose(result.gradients[0], g[0].sum(0), rtol=1e-12)
  pattern[1, 1] = True   # worker 1 straggles in round 1 too: job 0's D2 group has no coded task left
  assert not gc.is_bursty(pattern, 1, 2, 1)
  assert scheme.run(pattern, g).gradients[0] is None


def test_runtime_waits_for_all_when_the_pattern_is_not_tolerated():
  times = np.ones((4, 4))
  times[1, 0] = times[2, 0] = 5.0   # worker 0 straggles twice in a row
  uncoded = gc.runtime(None, times, 4, mu=0.1)
  assert uncoded['time'] == pytest.approx(4 * 1 + 4 + 4)   # load 1/n: round time = base time; waits for 5.0
  coded = gc.runtime(gc.gradient_code(4, 1), times, 4, mu=0.1)
  # load 2/4: every round time doubles; worker 0 (10.0) is a tolerated straggler, the master waits 2 * 1.1
  assert coded['time'] == pytest.approx(2 + 2.2 + 2.2 + 2) and coded['stragglers'] == 2
  m = gc.m_sgc(4, 1, 2, 1)   # bursts of one round only: the second straggling round waits for all
  out = gc.runtime(m, times, 3, mu=0.1)
  assert out['stragglers'] == 1 and out['waited_for_all'] == out['rounds'] - 1


def test_clock_bursts_have_the_markov_length():
  clock = Clock(1, straggler_prob=0.05, straggler_persist=0.75, straggler_factor=2.0, seed=0)
  flags = np.array([clock.straggles(0, k) for k in range(5000)])
  starts = np.flatnonzero(flags[1:] & ~flags[:-1])
  lengths = [np.argmin(flags[s + 1:]) for s in starts[:-1]]
  assert abs(np.mean(lengths) - 4.0) < 0.8          # geometric with mean 1 / (1 - 0.75)
  assert clock.straggles(0, 123) == Clock(1, straggler_prob=0.05, straggler_persist=0.75, seed=0).straggles(0, 123)
