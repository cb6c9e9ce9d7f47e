"""Tests of optim/privacy/tradeoff.py: the PLD curve against the Gaussian closed form, the CLT, the separation,
and a numeric check of the bound of "Fundamental Limitations" (arXiv 2601.10237) on the shuffled worst case."""

import numpy as np
import pytest
from scipy import stats

from optim.privacy import tradeoff

ALPHA = np.linspace(0.0, 1.0, 201)


@pytest.mark.parametrize('sigma, steps', [(1.0, 1), (2.0, 4), (3.0, 16)])
def test_pld_at_full_batch_is_the_gaussian_tradeoff(sigma, steps):
  # q = 1: T Gaussian mechanisms of noise multiplier sigma compose to mu-GDP with mu = sqrt(T) / sigma, whose
  # trade-off is G_mu(a) = Phi(Phi^-1(1 - a) - mu), written out here from the definition.
  exact = stats.norm.cdf(stats.norm.ppf(1 - ALPHA) - np.sqrt(steps) / sigma)
  f = tradeoff.poisson_tradeoff(ALPHA, sigma, 1.0, steps, value_discretization_interval=1e-3)
  np.testing.assert_allclose(f, exact, atol=2e-4)
  assert np.all(f <= exact + 1e-9)  # the pessimistic PLD never claims more privacy than there is
  np.testing.assert_allclose(tradeoff.gaussian_tradeoff(ALPHA, np.sqrt(steps) / sigma), exact, atol=1e-12)


def test_clt_mu_formula_and_agreement_with_pld_where_the_clt_applies():
  sigma, q, steps = 1.0, 0.01, 1000
  assert tradeoff.clt_mu(sigma, q, steps) == pytest.approx(q * np.sqrt(steps * (np.e - 1)), rel=1e-12)
  pld = tradeoff.poisson_tradeoff(ALPHA, sigma, q, steps, value_discretization_interval=1e-3)
  clt = tradeoff.poisson_tradeoff(ALPHA, sigma, q, steps, method='clt')
  assert np.max(np.abs(pld - clt)) < 0.01  # small q, many steps: the CLT regime
  # Few steps and little noise: the CLT is no bound and misses the exact curve by a wide margin.
  few = tradeoff.poisson_tradeoff(ALPHA, 0.7, 0.5, 2, value_discretization_interval=1e-3)
  assert np.max(np.abs(tradeoff.poisson_tradeoff(ALPHA, 0.7, 0.5, 2, method='clt') - few)) > 0.1


def test_tradeoff_from_a_single_pure_dp_guarantee():
  eps = 1.0  # eps-DP: f(a) = max(0, 1 - e^eps a, e^-eps (1 - a)) (Dong et al., Prop. 2.12)
  f = tradeoff.tradeoff_from_deltas(ALPHA, [eps], [0.0])
  np.testing.assert_allclose(f, np.maximum(0, np.maximum(1 - np.e * ALPHA, (1 - ALPHA) / np.e)), atol=1e-15)


def test_separation_of_gaussian_dp_is_total_variation_over_sqrt2():
  mu = 1.3  # TV(N(0,1), N(mu,1)) = 2 Phi(mu/2) - 1
  a = np.linspace(0, 1, 200001)
  kappa = tradeoff.separation(a, tradeoff.gaussian_tradeoff(a, mu))
  assert kappa == pytest.approx((2 * stats.norm.cdf(mu / 2) - 1) / np.sqrt(2), abs=1e-6)
  assert tradeoff.separation(a, 1 - a) == 0.0


def test_bound_values_as_stated():
  for m in (100, 1000, 10**6):
    assert tradeoff.noise_lower_bound(m) == pytest.approx(1 / np.sqrt(2 * np.log(m)), rel=1e-15)
    assert tradeoff.separation_lower_bound(m) == pytest.approx(
        (1 - 1 / np.sqrt(4 * np.pi * np.log(m))) / np.sqrt(8), rel=1e-15)
  assert tradeoff.noise_lower_bound(1000) == pytest.approx(0.2690, abs=1e-4)
  np.testing.assert_allclose(tradeoff.noise_lower_bound(np.array([100.0, 1e9])), [0.3295, 0.1553], atol=1e-4)


def test_max_test_formulas_match_monte_carlo():
  sigma, m, t = 0.5, 10, np.array([1.0, 2.0, 3.0])
  alpha, beta = tradeoff.shuffled_max_test(sigma, m, t)
  rng = np.random.default_rng(0)
  x0 = rng.standard_normal((100_000, m))
  x1 = rng.standard_normal((100_000, m))
  x1[np.arange(100_000), rng.integers(0, m, 100_000)] += 1 / sigma
  np.testing.assert_allclose(alpha, (x0.max(1)[:, None] > t).mean(0), atol=0.005)
  np.testing.assert_allclose(beta, (x1.max(1)[:, None] <= t).mean(0), atol=0.005)


@pytest.mark.parametrize('m', [100, 1000, 10**4, 10**6])
def test_below_the_noise_floor_the_separation_is_at_least_the_bound(m):
  # The max test is one valid test on the shuffled worst case, so its kappa is a lower bound on the mechanism's.
  # Below sigma = 1/sqrt(2 ln M) it already meets the paper's kappa bound; well above it, it does not (so the
  # check is not vacuous: the bound is about the noise regime, not any sigma).
  floor, bound = tradeoff.noise_lower_bound(m), tradeoff.separation_lower_bound(m)
  for factor in (1.0, 0.8, 0.5):
    assert tradeoff.separation(*tradeoff.shuffled_max_test(factor * floor, m)) >= bound
  assert tradeoff.separation(*tradeoff.shuffled_max_test(3 * floor, m)) < bound


def test_errors_name_the_function_and_argument():
  with pytest.raises(ValueError, match='poisson_tradeoff: method'):
    tradeoff.poisson_tradeoff(ALPHA, 1.0, 0.1, 10, method='rdp')
  with pytest.raises(ValueError, match='clt_mu: sampling_rate'):
    tradeoff.clt_mu(1.0, 1.5, 10)
  with pytest.raises(ValueError, match='pld_deltas: noise_multiplier'):
    tradeoff.pld_deltas(0.0, 0.1, 10, [1.0])
  with pytest.raises(ValueError, match='noise_lower_bound: num_steps'):
    tradeoff.noise_lower_bound(1)
  with pytest.raises(ValueError, match='gaussian_tradeoff: mu'):
    tradeoff.gaussian_tradeoff(ALPHA, -1.0)


def test_max_test_crossing_sits_just_above_the_noise_floor():
  # The max test alone forces the paper's separation up to a sigma at or slightly above 1/sqrt(2 ln M).
  for m in (100, 10**4):
    crossing = tradeoff.max_test_crossing(m)
    assert tradeoff.noise_lower_bound(m) <= crossing < 1.1 * tradeoff.noise_lower_bound(m)
    assert tradeoff.separation(*tradeoff.shuffled_max_test(crossing, m)) == pytest.approx(
        tradeoff.separation_lower_bound(m), abs=1e-5)
