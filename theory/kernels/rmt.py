"""The semicircle and Marchenko-Pastur laws (which the tensor-program framework rederives) against sampled
matrices: closed-form densities, CDFs and moments, and the Kolmogorov-Smirnov distance of a sampled spectrum.

* Wigner ``A = (G + G^T) / sqrt(2 n)``, ``G`` an ``n x n`` matrix of i.i.d. ``N(0, 1)``: the spectrum tends to
  the semicircle ``rho(x) = sqrt(4 - x^2) / (2 pi)`` on ``[-2, 2]``, CDF
  ``F(x) = 1/2 + x sqrt(4 - x^2) / (4 pi) + arcsin(x / 2) / pi``; moments ``E tr A^{2k} / n -> C_k`` (Catalan).
* Wishart ``W = X X^T / m``, ``X`` an ``n x m`` matrix of i.i.d. ``N(0, 1)``, ratio ``lam = n / m <= 1``: the
  spectrum tends to Marchenko-Pastur, ``rho(x) = sqrt((b - x)(x - a)) / (2 pi lam x)`` on
  ``[a, b] = [(1 - sqrt(lam))^2, (1 + sqrt(lam))^2]``; moments ``tr W^k / n -> sum_j N(k, j) lam^{j-1}``
  (Narayana numbers). The CDF is closed-form: with ``x = 1 + lam + 2 sqrt(lam) cos t``,
  ``F = (2 / pi) [H(pi) - H(t)]``, ``H(t) = -sin t / r + (1 + lam) t / r^2 - (1 - lam) / (2 lam)
  arctan(((1 - sqrt(lam)) / (1 + sqrt(lam))) tan(t / 2))``, ``r = 2 sqrt(lam)``.

The sampled spectra are float64 ``numpy.linalg.eigvalsh``; the KS distance is ``scipy.stats.kstest``'s statistic
against the closed-form CDF (it shrinks roughly like ``1/n``: eigenvalues are far more rigid than i.i.d. draws).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.stats


def semicircle_density(x: np.ndarray) -> np.ndarray:
  """``sqrt(4 - x^2) / (2 pi)`` on ``[-2, 2]``, 0 outside."""
  x = np.asarray(x, np.float64)
  return np.sqrt(np.clip(4 - x ** 2, 0, None)) / (2 * np.pi)


def semicircle_cdf(x: np.ndarray) -> np.ndarray:
  """The semicircle CDF (closed form, module docstring)."""
  x = np.clip(np.asarray(x, np.float64), -2, 2)
  return 0.5 + x * np.sqrt(4 - x ** 2) / (4 * np.pi) + np.arcsin(x / 2) / np.pi


def _check_ratio(ratio: float) -> None:
  if not 0 < ratio <= 1:
    raise ValueError(f'theory.kernels.rmt: ratio n/m must be in (0, 1], got {ratio}')


def mp_edges(ratio: float) -> tuple[float, float]:
  """The support ``[(1 - sqrt(lam))^2, (1 + sqrt(lam))^2]``."""
  return (1 - math.sqrt(ratio)) ** 2, (1 + math.sqrt(ratio)) ** 2


def mp_density(x: np.ndarray, ratio: float) -> np.ndarray:
  """The Marchenko-Pastur density of ratio ``lam = n / m`` (no atom for ``lam <= 1``)."""
  _check_ratio(ratio)
  a, b = mp_edges(ratio)
  x = np.asarray(x, np.float64)
  inside = (x > a) & (x < b)
  safe = np.where(inside, x, 1.0)
  return np.where(inside, np.sqrt(np.clip((b - safe) * (safe - a), 0, None)) / (2 * np.pi * ratio * safe), 0.0)


def mp_cdf(x: np.ndarray, ratio: float) -> np.ndarray:
  """The Marchenko-Pastur CDF in closed form (module docstring)."""
  _check_ratio(ratio)
  a, b = mp_edges(ratio)
  m0, r = 1 + ratio, 2 * math.sqrt(ratio)
  x = np.clip(np.asarray(x, np.float64), a, b)
  t = np.arccos(np.clip((x - m0) / r, -1, 1))
  q = (1 - math.sqrt(ratio)) / (1 + math.sqrt(ratio))

  def h(t):
    with np.errstate(divide='ignore', over='ignore'):
      atan = np.where(t >= np.pi, np.pi / 2, np.arctan(q * np.tan(np.minimum(t, np.pi) / 2)))
    return -np.sin(t) / r + m0 * t / r ** 2 - (1 - ratio) / (2 * ratio) * atan

  return np.clip(2 / np.pi * (h(np.pi) - h(t)), 0.0, 1.0)


def catalan(k: int) -> int:
  """``C_k = binom(2k, k) / (k + 1)``: the limit of ``tr A^{2k} / n`` for Wigner ``A``."""
  return math.comb(2 * k, k) // (k + 1)


def mp_moment(k: int, ratio: float) -> float:
  """``sum_{j=1..k} N(k, j) lam^{j-1}``, ``N(k, j) = binom(k, j) binom(k, j-1) / k``: the limit of ``tr W^k / n``."""
  return sum(math.comb(k, j) * math.comb(k, j - 1) // k * ratio ** (j - 1) for j in range(1, k + 1))


def wigner_spectrum(n: int, seed: int = 0) -> np.ndarray:
  """Eigenvalues of one ``(G + G^T) / sqrt(2 n)``."""
  g = np.random.default_rng(seed).standard_normal((n, n))
  return np.linalg.eigvalsh((g + g.T) / math.sqrt(2 * n))


def wishart_spectrum(n: int, ratio: float, seed: int = 0) -> np.ndarray:
  """Eigenvalues of one ``X X^T / m`` with ``X`` of size ``n x round(n / ratio)``."""
  _check_ratio(ratio)
  m = int(round(n / ratio))
  x = np.random.default_rng(seed).standard_normal((n, m))
  return np.linalg.eigvalsh(x @ x.T / m)


def ks_distance(eigenvalues: np.ndarray, cdf) -> float:
  """``sup_x |F_n(x) - F(x)|`` between the empirical spectral CDF and ``cdf`` (``scipy.stats.kstest``)."""
  return float(scipy.stats.kstest(np.asarray(eigenvalues), cdf).statistic)


def spectrum_check(sizes=(100, 200, 400, 800), ratio: float = 0.25, seeds: int = 3) -> dict[str, np.ndarray]:
  """KS distances and the first four moments of sampled Wigner and Wishart spectra against the closed forms.

  Returns:
    ``sizes``; ``ks_wigner``, ``ks_wishart`` (``[len(sizes), seeds]``); ``moments_wigner`` (``tr A^{2k} / n``,
    ``k = 1..4``, largest size, mean over seeds) beside ``catalan``; ``moments_wishart`` beside ``narayana``; and
    the fitted log-log slope of the mean KS distance against ``n`` for each law.
  """
  ks_w, ks_m = np.zeros((len(sizes), seeds)), np.zeros((len(sizes), seeds))
  mom_w, mom_m = np.zeros((seeds, 4)), np.zeros((seeds, 4))
  for i, n in enumerate(sizes):
    for s in range(seeds):
      ew, em = wigner_spectrum(n, 1000 * i + s), wishart_spectrum(n, ratio, 1000 * i + s + 500)
      ks_w[i, s] = ks_distance(ew, semicircle_cdf)
      ks_m[i, s] = ks_distance(em, lambda x: mp_cdf(x, ratio))
      if i == len(sizes) - 1:
        mom_w[s] = [np.mean(ew ** (2 * k)) for k in range(1, 5)]
        mom_m[s] = [np.mean(em ** k) for k in range(1, 5)]
  slope = lambda ks: float(np.polyfit(np.log(sizes), np.log(ks.mean(axis=1)), 1)[0])
  return {'sizes': np.array(sizes), 'ratio': ratio, 'ks_wigner': ks_w, 'ks_wishart': ks_m,
          'ks_slope_wigner': slope(ks_w), 'ks_slope_wishart': slope(ks_m),
          'moments_wigner': mom_w.mean(0), 'catalan': np.array([catalan(k) for k in range(1, 5)]),
          'moments_wishart': mom_m.mean(0), 'narayana': np.array([mp_moment(k, ratio) for k in range(1, 5)])}
