"""The f-DP limits calculator: trade-off curves of DP-SGD and the noise floor of "Fundamental Limitations".

f-DP (Dong, Roth, Su, arXiv 1905.02383) describes a mechanism by its trade-off function: f(alpha) is the smallest
type-II error beta of any test of D against a neighbour D' whose type-I error is at most alpha. Perfect privacy is
f(alpha) = 1 - alpha (random guessing). This module computes

* the trade-off of the Poisson-subsampled Gaussian mechanism (DP-SGD) composed over T steps, either exactly
  (numerically) from ``dp_accounting``'s privacy loss distribution (PLD) or from the Gaussian-DP central limit
  theorem (mu-GDP with mu = q sqrt(T (e^{1/sigma^2} - 1)), Bu et al. arXiv 1911.11607), with the Gaussian
  trade-off G_mu(alpha) = Phi(Phi^{-1}(1 - alpha) - mu) as the closed form at q = 1;
* the separation kappa, the largest Euclidean distance from the curve to the line alpha + beta = 1;
* the bound of Ertan and van Dijk (arXiv 2601.10237): single-epoch shuffled DP-SGD with M updates must have
  sigma >= 1/sqrt(2 ln M) or kappa >= (1/sqrt 8)(1 - 1/sqrt(4 pi ln M));
* the closed-form trade-off of one concrete test on the shuffled mechanism's worst case (the maximum of the M
  released coordinates), a certified upper bound on its trade-off curve against which the bound is checked
  (:func:`max_test_crossing`: up to which sigma that test alone already forces the paper's separation).

Everything here is host-side NumPy/SciPy in float64 (the PLD is NumPy); nothing is traced.

>>> import numpy as np
>>> a = np.array([0.05, 0.5])
>>> np.round(gaussian_tradeoff(a, 1.0), 4)
array([0.7405, 0.1587])
>>> round(noise_lower_bound(1000), 4), round(separation_lower_bound(1000), 4)
(0.269, 0.3156)
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, special, stats

from dp_accounting.pld import privacy_loss_distribution as pld_lib

METHODS = ('pld', 'clt')


def _check_positive(what: str, name: str, value: float) -> None:
  if not (np.isfinite(value) and value > 0):
    raise ValueError(f'{what}: {name} must be finite and > 0, got {value!r}')


def _check_steps(what: str, steps: int, minimum: int = 1) -> None:
  if int(steps) != steps or steps < minimum:
    raise ValueError(f'{what}: the number of steps must be an integer >= {minimum}, got {steps!r}')


def _check_rate(what: str, sampling_rate: float) -> None:
  if not 0 < sampling_rate <= 1:
    raise ValueError(f'{what}: sampling_rate must be in (0, 1], got {sampling_rate!r}')


def _plain(x: np.ndarray):
  """A 0-d array as a Python float (scalar in, scalar out), anything else unchanged."""
  return float(x) if np.ndim(x) == 0 else x


def gaussian_tradeoff(alpha, mu: float) -> np.ndarray:
  """The trade-off function of mu-GDP: G_mu(alpha) = Phi(Phi^{-1}(1 - alpha) - mu).

  It is the trade-off of testing N(0, 1) against N(mu, 1): the Gaussian mechanism with sensitivity Delta and noise
  std s is mu-GDP with mu = Delta / s, and T of them compose to sqrt(T) mu (arXiv 1905.02383, Thm 3.6).
  """
  if not (np.isfinite(mu) and mu >= 0):
    raise ValueError(f'gaussian_tradeoff: mu must be finite and >= 0, got {mu!r}')
  alpha = np.asarray(alpha, dtype=np.float64)
  return stats.norm.cdf(stats.norm.isf(alpha) - mu)


def clt_mu(noise_multiplier: float, sampling_rate: float, steps: int) -> float:
  """The Gaussian-DP CLT parameter of Poisson-subsampled DP-SGD: mu = q sqrt(T (e^{1/sigma^2} - 1)).

  Bu, Dong, Long, Su (arXiv 1911.11607, Thm 5): as T grows with q sqrt(T) fixed, T-fold composition of the
  q-subsampled Gaussian mechanism with noise multiplier sigma tends to mu-GDP with this mu. It is an asymptotic
  statement, not a bound: for few steps it can miss the exact curve either way (at small sigma its mu is far too
  large, elsewhere slightly too small); use ``method='pld'`` for a certified curve.
  """
  _check_positive('clt_mu', 'noise_multiplier', noise_multiplier)
  _check_rate('clt_mu', sampling_rate)
  _check_steps('clt_mu', steps)
  return float(sampling_rate * np.sqrt(steps * np.expm1(1.0 / noise_multiplier**2)))


def pld_deltas(noise_multiplier: float, sampling_rate: float, steps: int, epsilons, *,
               value_discretization_interval: float = 1e-4) -> np.ndarray:
  """delta(eps) of the T-fold Poisson-subsampled Gaussian mechanism from ``dp_accounting``'s PLD.

  Add-or-remove-one neighbours, sensitivity 1, noise std ``noise_multiplier``; the pessimistic discretisation, so
  each delta is an upper bound; ``get_delta_for_epsilon`` takes the worse of the add and remove directions.
  """
  _check_positive('pld_deltas', 'noise_multiplier', noise_multiplier)
  _check_rate('pld_deltas', sampling_rate)
  _check_steps('pld_deltas', steps)
  pld = pld_lib.from_gaussian_mechanism(
      standard_deviation=noise_multiplier, sensitivity=1.0, sampling_prob=sampling_rate,
      value_discretization_interval=value_discretization_interval, pessimistic_estimate=True)
  pld = pld.self_compose(int(steps))
  return np.asarray(pld.get_delta_for_epsilon(np.asarray(epsilons, dtype=np.float64)), dtype=np.float64)


def tradeoff_from_deltas(alpha, epsilons, deltas) -> np.ndarray:
  """The trade-off curve implied by a family of (eps, delta(eps)) guarantees, eps >= 0.

  f(alpha) = max_eps max(0, 1 - delta(eps) - e^eps alpha, e^{-eps} (1 - delta(eps) - alpha)) (Dong et al.,
  arXiv 1905.02383, Prop. 2.12 and 2.13, with both directions because ``delta`` is the worse of the two). For a
  symmetric mechanism the second piece is the eps -> -eps piece of the first, so eps >= 0 suffices; the curve is
  exact in the limit of a fine grid and a lower bound on f (a pessimistic curve) for any grid.
  """
  alpha = np.asarray(alpha, dtype=np.float64)
  eps = np.asarray(epsilons, dtype=np.float64)[None, :]
  delta = np.asarray(deltas, dtype=np.float64)[None, :]
  a = alpha.reshape(-1, 1)
  pieces = np.maximum(1 - delta - np.exp(eps) * a, np.exp(-eps) * (1 - delta - a))
  return np.clip(pieces.max(axis=1), 0.0, 1.0).reshape(alpha.shape)


def poisson_tradeoff(alpha, noise_multiplier: float, sampling_rate: float, steps: int, *, method: str = 'pld',
                     eps_max: float | None = None, num_epsilons: int = 2001,
                     value_discretization_interval: float = 1e-4) -> np.ndarray:
  """The trade-off function f(alpha) of DP-SGD with Poisson sampling rate q, noise multiplier sigma, T steps.

  Args:
    alpha: type-I errors in [0, 1].
    noise_multiplier: sigma, the noise std over the clipping norm.
    sampling_rate: q, the Poisson sampling probability (q = 1: full batch, the plain Gaussian mechanism).
    steps: T, the number of compositions.
    method: ``'pld'`` (numerically exact: the PLD's delta(eps) on an eps grid through
      :func:`tradeoff_from_deltas`; a lower bound on the true f up to the grid) or ``'clt'`` (G_mu with
      mu = :func:`clt_mu`, the approximation "Fundamental Limitations" and Bu et al. use).
    eps_max: the largest eps on the grid (default: where the curve needs it, from the CLT's mu).
    num_epsilons: grid size for ``'pld'``.
    value_discretization_interval: the PLD's discretisation (smaller: slower and tighter).

  Returns:
    f(alpha), an array shaped like ``alpha``.
  """
  if method not in METHODS:
    raise ValueError(f'poisson_tradeoff: method must be one of {METHODS}, got {method!r}')
  if method == 'clt':
    return gaussian_tradeoff(alpha, clt_mu(noise_multiplier, sampling_rate, steps))
  if eps_max is None:
    # A mu-GDP curve needs eps up to about mu^2/2 + 6 mu; the CLT's mu (or the q = 1 bound) sets the scale.
    mu = max(clt_mu(noise_multiplier, sampling_rate, steps), np.sqrt(steps) * min(sampling_rate, 1.0) /
             noise_multiplier)
    eps_max = min(100.0, max(2.0, mu * mu / 2 + 6 * mu))
  epsilons = np.linspace(0.0, eps_max, num_epsilons)
  deltas = pld_deltas(noise_multiplier, sampling_rate, steps, epsilons,
                      value_discretization_interval=value_discretization_interval)
  return tradeoff_from_deltas(alpha, epsilons, deltas)


def separation(alpha, beta) -> float:
  """kappa: the largest Euclidean distance from the points (alpha, beta) below the diagonal to alpha + beta = 1.

  kappa = max (1 - alpha - beta) / sqrt(2), = TV / sqrt(2) where TV = max_alpha (1 - alpha - f(alpha)) is the best
  membership advantage (true-positive minus false-positive rate) any test achieves.
  """
  gap = 1.0 - np.asarray(alpha, dtype=np.float64) - np.asarray(beta, dtype=np.float64)
  return float(max(0.0, gap.max()) / np.sqrt(2.0))


def noise_lower_bound(num_steps):
  """The noise floor of Ertan and van Dijk (arXiv 2601.10237): sigma_min(M) = 1/sqrt(2 ln M).

  Their main result, as the abstract states it: under the standard worst-case adversary, single-epoch shuffled
  DP-SGD with M updates satisfies sigma >= 1/sqrt(2 ln M) or kappa >= :func:`separation_lower_bound` (M). So a
  favourable trade-off (kappa below that bound) needs sigma >= sigma_min(M), whatever the batch size. The same
  limitation holds for Poisson subsampling up to constant factors (the paper does not state the constants in the
  abstract, and they are not encoded here). Requires M >= 2.
  """
  m = np.asarray(num_steps, dtype=np.float64)
  if np.any(m < 2):
    raise ValueError(f'noise_lower_bound: num_steps must be >= 2, got {num_steps!r}')
  return _plain(1.0 / np.sqrt(2.0 * np.log(m)))


def separation_lower_bound(num_steps):
  """kappa_min(M) = (1/sqrt 8)(1 - 1/sqrt(4 pi ln M)): the separation forced when sigma < 1/sqrt(2 ln M).

  As kappa = TV/sqrt(2), it is a membership advantage of at least (1/2)(1 - 1/sqrt(4 pi ln M)) (0.446 at M = 10^3).
  Requires M >= 2 (arXiv 2601.10237).
  """
  m = np.asarray(num_steps, dtype=np.float64)
  if np.any(m < 2):
    raise ValueError(f'separation_lower_bound: num_steps must be >= 2, got {num_steps!r}')
  return _plain((1.0 - 1.0 / np.sqrt(4.0 * np.pi * np.log(m))) / np.sqrt(8.0))


def shuffled_max_test(noise_multiplier: float, num_steps: int, thresholds=None) -> tuple[np.ndarray, np.ndarray]:
  """(alpha, beta) of the max test on the worst case of single-epoch shuffled DP-SGD, in closed form.

  Worst case (the adversary knows, or sets to 0, every other gradient, and the target's clipped gradient has norm
  C in a direction it chooses): in units of the noise, the M releases projected on that direction are
  P0 = N(0, I_M) without the target and, with it, P1 = N(e_J / sigma, I_M) with J uniform on the M steps (the step
  whose batch holds the target). The test "reject P0 when max_j x_j > t" has

    alpha(t) = 1 - Phi(t)^M,          beta(t) = Phi(t)^(M-1) Phi(t - 1/sigma),

  so f(alpha(t)) <= beta(t) for every t: a certified upper bound on the trade-off curve (a lower bound on kappa).

  Args:
    noise_multiplier: sigma.
    num_steps: M, the number of updates in the epoch.
    thresholds: the t's (default: a grid fine enough for kappa to 1e-4).

  Returns:
    (alpha, beta), arrays over the thresholds.
  """
  _check_positive('shuffled_max_test', 'noise_multiplier', noise_multiplier)
  _check_steps('shuffled_max_test', num_steps)
  if thresholds is None:
    thresholds = np.linspace(-6.0, 12.0 + 1.0 / noise_multiplier, 20001)
  t = np.asarray(thresholds, dtype=np.float64)
  log_cdf = special.log_ndtr(t)
  alpha = -np.expm1(num_steps * log_cdf)
  beta = np.exp((num_steps - 1) * log_cdf + special.log_ndtr(t - 1.0 / noise_multiplier))
  return alpha, beta


def max_test_crossing(num_steps: int, kappa: float | None = None) -> float:
  """The noise multiplier at which the max test's separation on the shuffled worst case falls to ``kappa``.

  ``kappa`` defaults to :func:`separation_lower_bound` (M): the max test then certifies the paper's alternative
  (kappa >= the bound) for every sigma up to the returned value, to be compared with :func:`noise_lower_bound`.
  The separation of the max test decreases in sigma; the crossing is found by ``scipy.optimize.brentq``.
  """
  _check_steps('max_test_crossing', num_steps, minimum=2)
  target = separation_lower_bound(num_steps) if kappa is None else kappa
  gap = lambda s: separation(*shuffled_max_test(s, num_steps)) - target
  lo, hi = 1e-3, 50.0
  if gap(lo) < 0 or gap(hi) > 0:
    raise ValueError(f'max_test_crossing: kappa={target!r} is not crossed for sigma in [{lo}, {hi}]')
  return float(optimize.brentq(gap, lo, hi, xtol=1e-6))
