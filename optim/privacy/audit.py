"""The Bayesian privacy audit of Zanella-Beguelin et al., "Bayesian Estimation of Differential Privacy" (arXiv
2206.05199), beside the Clopper-Pearson interval it improves on.

A membership-inference game on challenge points gives counts: TP and FN over members (points in the training
set), FP and TN over non-members. The hypothesis-testing view of DP (Kairouz et al. 2015) says that a mechanism is
(eps, delta)-DP iff every test's (FNR, FPR) lies in the privacy region

  R(eps, delta) = {(x, y): lo(x) <= y <= hi(x)},
  lo(x) = max(0, 1 - delta - e^eps x, e^-eps (1 - delta - x)),
  hi(x) = min(1, 1 + e^-eps (delta - x), delta + e^eps (1 - x)).

The regions are nested in eps, so each point has a smallest eps: eps(x, y) = max(0, log((1 - delta - y)/x),
log((1 - delta - x)/y)) (:func:`epsilon_from_rates`). The paper puts independent Jeffreys priors on the two rates,

  FNR ~ Beta(1/2 + FN, 1/2 + TP),     FPR ~ Beta(1/2 + FP, 1/2 + TN)     (posterior, its `joint-beta` model),

and the posterior of the attack's eps is the push-forward: P(eps_hat <= eps | counts) = posterior mass of
R(eps, delta). Its quantiles give a credible interval (equal tails, alpha/2 each side, as the official code's
``eps_lo_hi``). The prior method (Jagielski et al. 2020, Nasr et al. 2021) takes a Clopper-Pearson interval for each
rate at alpha/2 (union bound) and maps the rectangle's corners through eps(x, y).

Conventions. Positive = member. The posterior mass is computed as a one-dimensional integral of
Beta cdfs (Gauss-Legendre in the FNR's quantile coordinate), where the official code
(microsoft/responsible-ai-toolbox-privacy) uses ``dblquad`` over the density; both are the same integral (the tests
compare them with ``dblquad``), the 1-d form is faster and more accurate. Quantiles are found by
``scipy.optimize.brentq`` to ``xtol`` (the code: ``root_scalar`` with xtol 1e-2 and eps capped at 10; here
``eps_max`` is an argument, 30 by default). The estimate concerns the attack that
produced the counts; its lower end is evidence that eps is at least that large, never a certificate that it is
small. Choose the attack's threshold on data other than the counted challenge points (see
:func:`select_threshold`).

Host-side NumPy/SciPy in float64: the audit runs once on counts after training, nothing in it is traced.

>>> c = AttackCounts(tp=90, fn=10, fp=10, tn=90)
>>> round(epsilon_from_rates(c.fnr, c.fpr, delta=0.0), 4)  # log(0.9 / 0.1)
2.1972
>>> lo, hi = credible_interval(c, delta=0.0)
>>> lo < 2.1972 < hi
True
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import optimize, stats


class AttackCounts(NamedTuple):
  """Outcomes of a membership-inference test: members (tp, fn) and non-members (fp, tn)."""
  tp: int
  fn: int
  fp: int
  tn: int

  @property
  def fnr(self) -> float:
    return self.fn / max(self.tp + self.fn, 1)

  @property
  def fpr(self) -> float:
    return self.fp / max(self.fp + self.tn, 1)


def _check_counts(what: str, counts: AttackCounts) -> AttackCounts:
  counts = AttackCounts(*(int(c) for c in counts))
  if min(counts) < 0 or counts.tp + counts.fn == 0 or counts.fp + counts.tn == 0:
    raise ValueError(f'{what}: counts must be >= 0 with at least one member and one non-member, got {counts}')
  return counts


def _check_delta(what: str, delta: float) -> None:
  if not 0 <= delta < 1:
    raise ValueError(f'{what}: delta must be in [0, 1), got {delta!r}')


def _check_level(what: str, level: float) -> None:
  if not 0 < level < 1:
    raise ValueError(f'{what}: level must be in (0, 1), got {level!r}')


def attack_counts(member_scores, nonmember_scores, threshold: float) -> AttackCounts:
  """The counts of the test "member iff score > threshold" (higher score = more likely a member)."""
  member_scores, nonmember_scores = np.asarray(member_scores), np.asarray(nonmember_scores)
  tp = int(np.sum(member_scores > threshold))
  fp = int(np.sum(nonmember_scores > threshold))
  return AttackCounts(tp=tp, fn=member_scores.size - tp, fp=fp, tn=nonmember_scores.size - fp)


def epsilon_from_rates(fnr, fpr, delta: float):
  """The smallest eps whose (eps, delta) privacy region holds (fnr, fpr); inf on the axes, 0 near the diagonal.

  eps = max(0, log((1 - delta - fpr) / fnr), log((1 - delta - fnr) / fpr)), after reflecting points above the
  diagonal fnr + fpr = 1 (a test and its complement have the same eps). Vectorised over arrays.
  """
  _check_delta('epsilon_from_rates', delta)
  x, y = np.broadcast_arrays(np.asarray(fnr, dtype=np.float64), np.asarray(fpr, dtype=np.float64))
  above = x + y > 1
  x, y = np.where(above, 1 - y, x), np.where(above, 1 - x, y)
  with np.errstate(divide='ignore', invalid='ignore'):
    e1 = np.log(np.maximum(1 - delta - y, 0) / x)
    e2 = np.log(np.maximum(1 - delta - x, 0) / y)
  eps = np.nan_to_num(np.maximum(np.maximum(e1, e2), 0.0), nan=0.0, posinf=np.inf)
  return float(eps) if eps.ndim == 0 else eps


def region_bounds(fnr, eps: float, delta: float) -> tuple[np.ndarray, np.ndarray]:
  """lo(fnr), hi(fnr): the FPRs between which (fnr, fpr) is consistent with (eps, delta)-DP."""
  x = np.asarray(fnr, dtype=np.float64)
  e = np.exp(eps)
  lo = np.maximum(0.0, np.maximum(1 - delta - e * x, (1 - delta - x) / e))
  hi = np.minimum(1.0, np.minimum(1 + (delta - x) / e, delta + e * (1 - x)))
  return lo, hi


def posteriors(counts: AttackCounts):
  """The Jeffreys posteriors (FNR, FPR) = (Beta(1/2 + FN, 1/2 + TP), Beta(1/2 + FP, 1/2 + TN)) as scipy laws."""
  c = _check_counts('posteriors', counts)
  return stats.beta(0.5 + c.fn, 0.5 + c.tp), stats.beta(0.5 + c.fp, 0.5 + c.tn)


def posterior_cdf(counts: AttackCounts, eps: float, delta: float) -> float:
  """P(eps_hat <= eps | counts): the posterior mass of the privacy region R(eps, delta).

  = int_0^1 [F_FPR(hi(x)) - F_FPR(lo(x))] dP_FNR(x), computed in the FNR's quantile coordinate u = F_FNR(x)
  (x = Q_FNR(u)), where the integrand is bounded and spread over [0, 1] however peaked the posterior is.
  """
  _check_delta('posterior_cdf', delta)
  fnr_law, fpr_law = posteriors(counts)
  if np.isinf(eps):
    return 1.0

  # Gauss-Legendre on panels split at the kinks of the integrand (where the region's boundary pieces meet) and
  # graded geometrically towards u = 0 and 1 (where the quantile function is singular), so every panel is smooth:
  # ~1e-9 against scipy's dblquad, in one vectorised ppf call.
  e = np.exp(eps)
  kinks = fnr_law.cdf([(1 - delta) / (1 + e), 1 - (1 - delta) / (1 + e), delta, 1 - delta])
  ends = np.geomspace(1e-14, 1 / 64, 24)
  edges = np.unique(np.concatenate([np.linspace(0.0, 1.0, 65), ends, 1 - ends, kinks[(kinks > 0) & (kinks < 1)]]))
  nodes, weights = np.polynomial.legendre.leggauss(16)
  left, width = edges[:-1, None], np.diff(edges)[:, None]
  u = (left + width * (nodes[None, :] + 1) / 2).ravel()
  lo, hi = region_bounds(fnr_law.ppf(u), eps, delta)
  values = np.maximum(fpr_law.cdf(hi) - fpr_law.cdf(lo), 0.0)
  mass = float(np.sum((width * weights[None, :] / 2).ravel() * values))
  return float(min(max(mass, 0.0), 1.0))


def posterior_quantile(counts: AttackCounts, q: float, delta: float, *, eps_max: float = 30.0,
                       xtol: float = 1e-4) -> float:
  """The q-quantile of the posterior of eps: the smallest eps whose region holds mass q (inf beyond eps_max)."""
  _check_level('posterior_quantile', q)
  objective = lambda eps: posterior_cdf(counts, eps, delta) - q
  if objective(0.0) >= 0:
    return 0.0
  if objective(eps_max) < 0:
    return float('inf')
  return float(optimize.brentq(objective, 0.0, eps_max, xtol=xtol))


def credible_interval(counts: AttackCounts, delta: float, level: float = 0.95, **kwargs) -> tuple[float, float]:
  """The equal-tailed credible interval for eps: quantiles (1 - level)/2 and (1 + level)/2 of the posterior."""
  _check_level('credible_interval', level)
  tail = (1 - level) / 2
  return (posterior_quantile(counts, tail, delta, **kwargs), posterior_quantile(counts, 1 - tail, delta, **kwargs))


def epsilon_lower_bound(counts: AttackCounts, delta: float, level: float = 0.95, **kwargs) -> float:
  """A one-sided bound: eps >= the returned value with posterior probability ``level`` (the (1 - level)-quantile)."""
  _check_level('epsilon_lower_bound', level)
  return posterior_quantile(counts, 1 - level, delta, **kwargs)


def posterior_samples(counts: AttackCounts, delta: float, num_samples: int, seed: int = 0) -> np.ndarray:
  """Monte Carlo draws of the posterior of eps: (FNR, FPR) from the Beta posteriors mapped through eps(x, y)."""
  fnr_law, fpr_law = posteriors(counts)
  rng = np.random.default_rng(seed)
  return epsilon_from_rates(fnr_law.rvs(num_samples, random_state=rng), fpr_law.rvs(num_samples, random_state=rng),
                            delta)


def clopper_pearson(successes: int, trials: int, level: float) -> tuple[float, float]:
  """The two-sided Clopper-Pearson interval of a binomial proportion (Beta quantiles; 0 and 1 at the edges)."""
  _check_level('clopper_pearson', level)
  if trials <= 0 or not 0 <= successes <= trials:
    raise ValueError(f'clopper_pearson: need 0 <= successes <= trials and trials > 0, got {successes}, {trials}')
  tail = (1 - level) / 2
  lo = 0.0 if successes == 0 else stats.beta.ppf(tail, successes, trials - successes + 1)
  hi = 1.0 if successes == trials else stats.beta.ppf(1 - tail, successes + 1, trials - successes)
  return float(lo), float(hi)


def clopper_pearson_interval(counts: AttackCounts, delta: float, level: float = 0.95) -> tuple[float, float]:
  """The prior method's interval for eps: a Clopper-Pearson interval for each rate at level 1 - alpha/2 (union
  bound, alpha = 1 - level), the rectangle's corners mapped through eps(x, y); eps_lo = 0 when the rectangle
  crosses the diagonal (as ``privacy_estimates.binomial_proportion.compute_eps_lo_hi``)."""
  c = _check_counts('clopper_pearson_interval', counts)
  _check_delta('clopper_pearson_interval', delta)
  alpha = 1 - level
  fpr_lo, fpr_hi = clopper_pearson(c.fp, c.fp + c.tn, 1 - alpha / 2)
  fnr_lo, fnr_hi = clopper_pearson(c.fn, c.fn + c.tp, 1 - alpha / 2)
  e_small = epsilon_from_rates(fnr_lo, fpr_lo, delta)
  e_large = epsilon_from_rates(fnr_hi, fpr_hi, delta)
  straddles = (fnr_hi > 1 - fpr_hi) != (fnr_lo > 1 - fpr_lo)
  return (0.0 if straddles else min(e_small, e_large)), max(e_small, e_large)


def clopper_pearson_lower_bound(counts: AttackCounts, delta: float, level: float = 0.95) -> float:
  """The one-sided Clopper-Pearson bound at ``level``: the lower end of the two-sided interval at 2 level - 1."""
  _check_level('clopper_pearson_lower_bound', level)
  return clopper_pearson_interval(counts, delta, level=2 * level - 1)[0]


def select_threshold(member_scores, nonmember_scores, delta: float) -> float:
  """The threshold maximising the point estimate of eps with Jeffreys-smoothed rates ((k + 1/2)/(n + 1)).

  Choose it on held-out scores (other models or other challenge points) and count on fresh ones: choosing and
  counting on the same scores biases the interval upwards.
  """
  member_scores, nonmember_scores = np.asarray(member_scores), np.asarray(nonmember_scores)
  candidates = np.unique(np.concatenate([member_scores, nonmember_scores]))
  tp = (member_scores[None, :] > candidates[:, None]).sum(1)
  fp = (nonmember_scores[None, :] > candidates[:, None]).sum(1)
  fnr = (member_scores.size - tp + 0.5) / (member_scores.size + 1)
  fpr = (fp + 0.5) / (nonmember_scores.size + 1)
  return float(candidates[int(np.argmax(epsilon_from_rates(fnr, fpr, delta)))])
