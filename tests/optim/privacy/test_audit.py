"""Tests of optim/privacy/audit.py: the Bayesian posterior of eps (arXiv 2206.05199) against scipy's double
integral and Monte Carlo, Clopper-Pearson against scipy, hand cases, and the audit of DP-SGD's worst-case canary:
never above the accountant's epsilon, large without noise."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from optim import privacy
from optim.privacy import audit

COUNTS = [audit.AttackCounts(tp=90, fn=10, fp=10, tn=90), audit.AttackCounts(tp=500, fn=0, fp=3, tn=497),
          audit.AttackCounts(tp=30, fn=20, fp=25, tn=25)]


def test_epsilon_from_rates_hand_cases():
  assert audit.epsilon_from_rates(0.1, 0.1, 0.0) == pytest.approx(np.log(9))
  assert audit.epsilon_from_rates(0.2, 0.05, 0.01) == pytest.approx(max(np.log(0.94 / 0.2), np.log(0.79 / 0.05)))
  assert audit.epsilon_from_rates(0.9, 0.9, 0.0) == pytest.approx(np.log(9))   # the complement test
  assert audit.epsilon_from_rates(0.5, 0.5, 0.0) == 0.0
  assert audit.epsilon_from_rates(0.0, 0.3, 1e-5) == np.inf
  np.testing.assert_allclose(audit.epsilon_from_rates([0.1, 0.5], [0.1, 0.4], 0.0), [np.log(9), np.log(0.5 / 0.4)])


def test_region_boundary_points_have_that_epsilon():
  eps, delta = 1.2, 1e-3
  x = np.array([0.01, 0.1, 0.2, 0.3])
  lo, hi = audit.region_bounds(x, eps, delta)
  np.testing.assert_allclose(audit.epsilon_from_rates(x, lo, delta), eps, rtol=1e-12)
  inside = (lo + hi) / 2
  assert np.all(audit.epsilon_from_rates(x, inside, delta) < eps)


def _beta_pdf(a, b):
  c = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
  return lambda x: math.exp(c + (a - 1) * math.log(x) + (b - 1) * math.log1p(-x)) if 0 < x < 1 else 0.0


@pytest.mark.parametrize('counts, eps, delta', [(COUNTS[0], 2.0, 0.0), (COUNTS[2], 0.3, 0.0),
                                                (audit.AttackCounts(tp=40, fn=10, fp=5, tn=45), 1.5, 1e-3)])
def test_posterior_cdf_is_scipys_double_integral_of_the_beta_posteriors(counts, eps, delta):
  # The official code's definition: dblquad of Beta(1/2 + FN, 1/2 + TP) x Beta(1/2 + FP, 1/2 + TN) over R(eps, delta).
  fnr, fpr = _beta_pdf(0.5 + counts.fn, 0.5 + counts.tp), _beta_pdf(0.5 + counts.fp, 0.5 + counts.tn)
  ref, _ = integrate.dblquad(lambda y, x: fnr(x) * fpr(y), 0, 1,
                             lambda x: float(audit.region_bounds(x, eps, delta)[0]),
                             lambda x: float(audit.region_bounds(x, eps, delta)[1]), epsabs=1e-8)
  assert audit.posterior_cdf(counts, eps, delta) == pytest.approx(ref, abs=1e-7)


def test_credible_interval_is_the_quantiles_of_monte_carlo_draws():
  counts, delta = COUNTS[0], 1e-5
  draws = audit.posterior_samples(counts, delta, 400_000, seed=1)
  lo, hi = audit.credible_interval(counts, delta, level=0.9)
  np.testing.assert_allclose([lo, hi], np.quantile(draws, [0.05, 0.95]), atol=0.02)
  assert audit.epsilon_lower_bound(counts, delta, level=0.95) == pytest.approx(lo, abs=1e-3)
  assert audit.posterior_cdf(counts, 2.2, delta) == pytest.approx(np.mean(draws <= 2.2), abs=0.003)


@pytest.mark.parametrize('k, n', [(0, 50), (3, 50), (25, 50), (50, 50), (7, 1000)])
def test_clopper_pearson_matches_scipy(k, n):
  ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.975, method='exact')
  np.testing.assert_allclose(audit.clopper_pearson(k, n, 0.975), [ci.low, ci.high], atol=1e-10)


def test_clopper_pearson_interval_maps_the_rectangle_corners():
  counts, delta = COUNTS[0], 0.0
  fpr = stats.binomtest(10, 100).proportion_ci(confidence_level=0.975, method='exact')
  fnr = fpr  # same counts
  lo = np.log((1 - fpr.high) / fnr.high)
  hi = np.log((1 - fpr.low) / fnr.low)
  np.testing.assert_allclose(audit.clopper_pearson_interval(counts, delta, level=0.95), [lo, hi], rtol=1e-10)


def test_bayesian_interval_is_narrower_than_clopper_pearson_and_covers():
  # A mechanism with a known eps: scores N(0, 1) out, N(mu, 1) in, threshold t; its eps(delta) is that of the
  # true rates. The paper's claim: at the same trials and level, a narrower interval (~40% at best), with coverage.
  mu, t, n, delta = 2.0, 1.0, 500, 1e-5
  true_eps = audit.epsilon_from_rates(stats.norm.cdf(t - mu), stats.norm.sf(t), delta)
  rng = np.random.default_rng(0)
  ratios, covered = [], 0
  for _ in range(60):
    counts = audit.attack_counts(rng.normal(mu, 1, n), rng.normal(0, 1, n), t)
    draws = audit.posterior_samples(counts, delta, 20_000, seed=int(rng.integers(1 << 30)))
    lo, hi = np.quantile(draws, [0.025, 0.975])
    cp_lo, cp_hi = audit.clopper_pearson_interval(counts, delta)
    ratios.append((hi - lo) / (cp_hi - cp_lo))
    covered += lo <= true_eps <= hi
  assert np.mean(ratios) < 0.8
  assert covered >= 54  # 95% nominal; 54/60 = 90%


def test_attack_counts_and_threshold_selection():
  counts = audit.attack_counts([0.9, 0.8, 0.1], [0.2, 0.05, 0.7, 0.0], threshold=0.5)
  assert counts == audit.AttackCounts(tp=2, fn=1, fp=1, tn=3)
  assert audit.select_threshold(np.arange(10.0) + 10, np.arange(10.0), 0.0) == 9.0


def test_errors_name_the_function_and_argument():
  with pytest.raises(ValueError, match='posteriors: counts'):
    audit.posteriors(audit.AttackCounts(0, 0, 1, 1))
  with pytest.raises(ValueError, match='credible_interval: level'):
    audit.credible_interval(COUNTS[0], 0.0, level=1.5)
  with pytest.raises(ValueError, match='epsilon_from_rates: delta'):
    audit.epsilon_from_rates(0.1, 0.1, 1.0)


@jax.jit
def _released_sums(keys, is_member, noise_multiplier, steps):
  """The last-iterate white-box audit of DP-SGD's worst case, through ``optim.privacy.dp_sgd_aggregate``.

  Each model: ``steps`` full-batch steps on 3 examples with zero gradient plus, in the member models, a canary
  whose gradient (norm 5) is clipped to C = 1; the score is the sum of the released updates along the canary's
  direction (the attacker's optimal statistic here). sigma and the steps are traced: one compilation for all."""
  per_example = jnp.zeros((4, 1)).at[3, 0].set(5.0)

  def model(key, member):
    tx = privacy.dp_sgd_aggregate(1.0, noise_multiplier, reduction='sum')
    mask = jnp.arange(4) < 3 + member

    def step(_, carry):
      total, state = carry
      out, state = tx.update(per_example, state, mask=mask)
      return total + out[0], state

    return jax.lax.fori_loop(0, steps, step, (0.0, tx.init(jnp.zeros(1))._replace(key=key)))[0]

  return jax.vmap(model)(keys, is_member)


def _canary_scores(noise_multiplier, steps, num_models, seed):
  member = np.arange(num_models) % 2 == 0
  keys = jax.random.split(jax.random.key(seed), num_models)
  scores = np.asarray(_released_sums(keys, jnp.asarray(member), noise_multiplier, steps))
  return scores[member], scores[~member]


def _audit_lower_bound(noise_multiplier, steps, delta, num_models=4000):
  members, others = _canary_scores(noise_multiplier, steps, num_models, seed=0)
  half = members.size // 2  # choose the threshold on one half of the models, count on the other
  threshold = audit.select_threshold(members[:half], others[:half], delta)
  counts = audit.attack_counts(members[half:], others[half:], threshold)
  return audit.epsilon_lower_bound(counts, delta, level=0.95)


@pytest.mark.parametrize('noise_multiplier, steps', [(0.7, 1), (1.0, 1), (2.0, 4)])
def test_audit_lower_bound_never_exceeds_the_accountants_epsilon(noise_multiplier, steps):
  delta = 1e-5
  eps = privacy.epsilon(noise_multiplier, 1.0, steps, delta, accountant='pld', pld_discretization=1e-3)
  lower = _audit_lower_bound(noise_multiplier, steps, delta)
  assert 0 < lower <= eps
  assert lower > 0.25 * eps  # a real attack: the canary is found, not a vacuous 0


def test_audit_lower_bound_is_large_without_noise():
  assert _audit_lower_bound(0.0, 2, 1e-5) > 5.0
