"""RQM: closed-form output law against brute-force enumeration, exact RDP against a grid search, the sampler's law,
composition through dp-accounting."""

import itertools
import math

import jax
import numpy as np
import pytest
from dp_accounting import rdp as dp_rdp

from decentral.compression import privacy


def _brute_force_distribution(x, c, delta, m, q):
  """P(output = B_j) by enumerating every subset of kept interior levels (2^(m-2) cases)."""
  b = privacy.levels(delta, m)
  out = np.zeros(m)
  for kept in itertools.product([0, 1], repeat=m - 2):
    mask = np.array([1, *kept, 1], bool)
    prob = q ** sum(kept) * (1 - q) ** (m - 2 - sum(kept))
    idx = np.flatnonzero(mask)
    lo = idx[idx <= np.searchsorted(b, x, side='right') - 1].max()
    hi = idx[b[idx] > x].min() if np.any(b[idx] > x) else lo
    if hi == lo:
      out[lo] += prob
      continue
    up = (x - b[lo]) / (b[hi] - b[lo])
    out[hi] += prob * up
    out[lo] += prob * (1 - up)
  return out


CASES = [(1.0, 1.5, 5, 0.5), (1.0, 1.2, 6, 0.3), (2.0, 2.5, 7, 0.8)]


@pytest.mark.parametrize('c,delta,m,q', CASES)
def test_closed_form_law_matches_enumeration_and_is_unbiased(c, delta, m, q):
  for x in np.linspace(-c, c, 9):
    p = privacy.output_distribution(float(x), c=c, delta=delta, m=m, q=q)
    np.testing.assert_allclose(p, _brute_force_distribution(x, c, delta, m, q), atol=1e-12)
    assert p.sum() == pytest.approx(1.0) and p @ privacy.levels(delta, m) == pytest.approx(x)


@pytest.mark.parametrize('c,delta,m,q', CASES[:2])
def test_rdp_equals_a_direct_numerical_supremum(c, delta, m, q):
  """eps(alpha) against the largest divergence over a fine grid of (x, x') with brute-force laws."""
  grid = np.linspace(-c, c, 41)
  laws = [_brute_force_distribution(x, c, delta, m, q) for x in grid]
  for alpha in (1.5, 2.0, 8.0):
    direct = max(privacy.renyi_divergence(p, r, alpha) for p in laws for r in laws)
    exact = privacy.rdp(alpha, c=c, delta=delta, m=m, q=q)
    assert direct <= exact + 1e-9  # the grid cannot beat the supremum ...
    assert direct == pytest.approx(exact, rel=1e-9)  # ... and the grid contains a maximising pair (+-c)


def test_rdp_grows_with_q_and_with_alpha():
  eps = [privacy.rdp(2.0, c=1.0, delta=1.5, m=6, q=q) for q in (0.2, 0.5, 0.8)]
  assert eps[0] < eps[1] < eps[2]  # fewer dropped levels, less privacy
  curve = privacy.rdp_curve([1.5, 2.0, 4.0, 16.0], c=1.0, delta=1.5, m=6, q=0.5)
  assert np.all(np.diff(curve) > 0)


def test_sampler_follows_the_closed_form_law():
  c, delta, m, q, x = 1.0, 1.25, 6, 0.6, 0.37
  comp = privacy.rqm(c, delta, m, q)
  n = 20000
  codes = jax.jit(lambda k: comp.compress(np.full(n, x, np.float32), k)['codes'])(jax.random.key(0))
  freq = np.bincount(np.asarray(codes), minlength=m) / n
  p = privacy.output_distribution(x, c=c, delta=delta, m=m, q=q)
  # per level: within 5 binomial standard errors
  assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-12), (freq, p)


def test_composition_through_dp_accounting():
  kw = dict(c=1.0, delta=1.5, m=4, q=0.5)
  orders = [1.5, 2.0, 4.0, 8.0, 16.0]
  eps10, _ = privacy.epsilon(1e-5, rounds=10, orders=orders, **kw)
  eps100, _ = privacy.epsilon(1e-5, rounds=100, dims=1, orders=orders, **kw)
  one = privacy.rdp_curve(orders, **kw)
  want, _ = dp_rdp.compute_epsilon(orders, list(10 * one), 1e-5)
  assert eps10 == pytest.approx(want) and eps100 > eps10
  # d coordinates compose like d rounds
  assert privacy.epsilon(1e-5, rounds=10, dims=10, orders=orders, **kw)[0] == pytest.approx(eps100)
  # the RDP-to-DP conversion is at most the classical bound min_alpha rdp + log(1/delta)/(alpha - 1)
  classical = min(10 * e + math.log(1e5) / (a - 1) for a, e in zip(orders, one))
  assert eps10 <= classical + 1e-9


def test_bad_input():
  with pytest.raises(ValueError, match='delta'):
    privacy.rqm(1.0, 0.5)
  with pytest.raises(ValueError, match='q'):
    privacy.rqm(1.0, 1.5, q=0.0)
  with pytest.raises(ValueError, match='x must lie'):
    privacy.output_distribution(2.0, c=1.0, delta=1.5, m=4, q=0.5)
