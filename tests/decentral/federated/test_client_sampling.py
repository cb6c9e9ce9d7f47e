"""decentral.federated.sampling: each sampler follows its stated law (chi-square tests with a fixed seed)."""

import jax
import numpy as np
import pytest
from scipy import stats

from decentral.federated import sampling

ROUNDS = 4000


def _draws(sampler, rounds=ROUNDS):
  keys = jax.random.split(jax.random.key(2026), rounds)
  sel = jax.jit(jax.vmap(sampler.sample))(keys)
  return np.asarray(sel.clients), np.asarray(sel.active), np.asarray(sel.inclusion)


def test_uniform_draws_distinct_clients_each_equally_often():
  clients, active, inclusion = _draws(sampling.uniform(20, 5))
  assert active.all() and np.allclose(inclusion, 5 / 20)
  assert all(len(set(row)) == 5 for row in clients.tolist())  # without replacement
  counts = np.bincount(clients.ravel(), minlength=20)
  # Inclusion counts are Binomial(R, m/N) each (negatively correlated, so the test is conservative).
  assert stats.chisquare(counts).pvalue > 1e-3
  # A coarse check that pairs are uniform too: P(0 and 1 together) = m (m - 1) / (N (N - 1)).
  both = np.mean([(0 in row) and (1 in row) for row in clients.tolist()])
  assert abs(both - 5 * 4 / (20 * 19)) < 4 * np.sqrt(both * (1 - both) / ROUNDS)


def test_with_probabilities_is_multinomial():
  p = np.array([0.4, 0.3, 0.2, 0.1, 0.0])
  clients, _, inclusion = _draws(sampling.with_probabilities(p, 3))
  counts = np.bincount(clients.ravel(), minlength=5)
  assert counts[4] == 0
  assert stats.chisquare(counts[:4], ROUNDS * 3 * p[:4]).pvalue > 1e-3
  np.testing.assert_allclose(inclusion[clients == 0], 1 - 0.6 ** 3, rtol=1e-6)


def test_bernoulli_participation_follows_each_probability():
  p = np.array([1.0, 0.5, 0.1, 0.0, 0.3])
  clients, active, inclusion = _draws(sampling.bernoulli(p))
  assert (clients == np.arange(5)).all() and np.allclose(inclusion, p)
  hits = active.sum(0)
  assert hits[0] == ROUNDS and hits[3] == 0
  # Three independent Binomial(R, p_i) counts, each as two cells (in, out): a chi-square with 3 degrees of freedom.
  observed = np.concatenate([hits[[1, 2, 4]], ROUNDS - hits[[1, 2, 4]]])
  expected = ROUNDS * np.concatenate([p[[1, 2, 4]], 1 - p[[1, 2, 4]]])
  assert stats.chisquare(observed, expected, ddof=2).pvalue > 1e-3


def test_everyone_and_bad_arguments():
  s = sampling.everyone(4).sample(jax.random.key(0))
  assert s.clients.tolist() == [0, 1, 2, 3] and bool(s.active.all())
  with pytest.raises(ValueError, match='per_round=5 exceeds num_clients=4'):
    sampling.uniform(4, 5)
  with pytest.raises(ValueError, match='with_probabilities: probs'):
    sampling.with_probabilities([-1.0, 2.0], 1)
  with pytest.raises(ValueError, match='bernoulli: probs'):
    sampling.bernoulli([0.5, 1.5])
