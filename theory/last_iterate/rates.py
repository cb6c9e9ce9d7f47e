"""Rates: the orders Liu & Zhou (arXiv 2312.08531) prove for the last iterate, log-log slope fits, and an exact
expectation oracle.

**The bounds** (in expectation; ``D = ||x_1 - x*||`` or ``sqrt(D_psi(x*, x_1))``, ``G`` the Lipschitz constant,
``sigma`` the noise scale, ``L`` smoothness, ``mu`` strong convexity), as orders in ``T``. They are the orders
listed in the project's reference notes for the paper's Table 1; only the abstract (which confirms the settings
covered: general domains, composite objectives, non-Euclidean norms, Lipschitz or smooth, (strongly) convex,
heavy-tailed noise) could be read for this module, not the theorems:

* Lipschitz convex, ``eta_t = eta / sqrt(t)``: ``O((D^2 / eta + eta (G^2 + sigma^2)) log T / sqrt(T))``;
* Lipschitz ``mu``-strongly convex, ``eta_t = 1 / (mu t)``: ``O((G^2 + sigma^2) log T / (mu T))``;
* ``L``-smooth convex: ``O(L D^2 / T + sigma D log T / sqrt(T))``;
* smooth strongly convex: ``O(sigma^2 log T / (mu T))`` plus a faster deterministic term;
* noise with a finite ``p``-th moment, ``p in (1, 2]``: ``O(T^{(1-p)/p} log T)`` (convex), and
  ``O(T^{2(1-p)/p} log T)`` (strongly convex).

The numeric constants of the paper's theorems could not be retrieved for this module (only its abstract was
reachable), so :func:`bound_shape` gives each order with constant 1 and the experiments compare *exponents*:
the fitted slope of ``log quantile(F(x_T) - F*)`` against ``log T`` with the exponent of ``T`` in the bound
(the ``log T`` factor moves a fitted slope over ``T in [10^2, 10^4]`` by about ``+0.13``; :func:`log_slope_of_bound`
gives that shift exactly for each shape).
"""

from __future__ import annotations

import numpy as np

EXPONENTS = {'lipschitz_convex': -0.5, 'lipschitz_strongly_convex': -1.0, 'smooth_convex': -0.5,
             'smooth_strongly_convex': -1.0}


def predicted_exponent(setting: str, p: float = 2.0) -> float:
  """The exponent of ``T`` in the bound: ``(1-p)/p`` (convex) or ``2(1-p)/p`` (strongly convex); ``p = 2``
  gives ``-1/2`` and ``-1``.

  Example:
    >>> predicted_exponent('lipschitz_convex', p=1.5)
    -0.3333333333333333
  """
  if setting not in EXPONENTS:
    raise ValueError(f'last_iterate.predicted_exponent: unknown setting {setting!r}; known: {sorted(EXPONENTS)}')
  base = (1.0 - p) / p
  return 2 * base if 'strongly' in setting else base


def bound_shape(setting: str, ts, p: float = 2.0) -> np.ndarray:
  """``T^e log T`` with ``e`` = :func:`predicted_exponent` (constant 1; ``log T`` taken as ``1 + log T``)."""
  ts = np.asarray(ts, np.float64)
  return ts ** predicted_exponent(setting, p) * (1.0 + np.log(ts))


def log_slope_of_bound(setting: str, ts, p: float = 2.0) -> float:
  """The least-squares log-log slope of :func:`bound_shape` over ``ts``: what a perfect match would measure."""
  return fit_slope(ts, bound_shape(setting, ts, p))[0]


def fit_slope(ts, values) -> tuple[float, float]:
  """Least-squares fit ``log values = slope log T + intercept``; returns ``(slope, intercept)``.

  Example:
    >>> round(fit_slope([10, 100, 1000], [1.0, 0.1, 0.01])[0], 12)
    -1.0
  """
  slope, intercept = np.polyfit(np.log(np.asarray(ts, np.float64)), np.log(np.asarray(values, np.float64)), 1)
  return float(slope), float(intercept)


def quantile_slopes(result: dict, t_min: int = 100, quantiles=(0.5, 0.9), which: str = 'last') -> dict:
  """Fitted slopes of the per-``T`` quantiles over seeds (heavy-tailed runs have no useful mean), ``T >= t_min``."""
  ts = result['T']
  keep = ts >= t_min
  gaps = np.maximum(result[which][:, keep], 1e-300)
  return {q: fit_slope(ts[keep], np.quantile(gaps, q, axis=0))[0] for q in quantiles}


def quadratic_expected_gap(s: np.ndarray, e0: np.ndarray, sigma: float, etas: np.ndarray) -> np.ndarray:
  """Exact ``E[F(x_t) - F*]`` of SGD on ``F = (1/2) e^T diag(s) e`` with additive ``N(0, sigma^2 I)`` gradient
  noise: ``m_{t+1} = (1 - eta_t s)^2 m_t + eta_t^2 sigma^2`` coordinatewise (``m = E e^2``), and
  ``E[F] = (1/2) sum_j s_j m_j``. Returns the value after each step (``len(etas)`` entries).

  Example:
    >>> quadratic_expected_gap(np.array([1.0]), np.array([1.0]), 0.0, np.array([0.5]))
    array([0.125])
  """
  m = np.asarray(e0, np.float64) ** 2
  out = np.empty(len(etas))
  for t, eta in enumerate(etas):
    m = (1 - eta * s) ** 2 * m + eta ** 2 * sigma ** 2
    out[t] = 0.5 * np.sum(s * m)
  return out
