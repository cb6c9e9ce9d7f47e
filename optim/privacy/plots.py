"""Figures of the f-DP limits calculator (:mod:`optim.privacy.tradeoff`); matplotlib is imported on first use.

- :func:`tradeoff_figure`: for the settings a user gives (sigma, q, T), the exact trade-off curve (PLD), the
  Gaussian-DP CLT curve, random guessing, and the line at the separation "Fundamental Limitations" (arXiv
  2601.10237) forces below its noise floor, for M = round(1/q) updates per epoch;
- :func:`noise_floor_figure`: sigma_min(M) = 1/sqrt(2 ln M) against M, with the largest sigma at which the
  shuffled worst case's max test still meets the separation bound.
"""

from __future__ import annotations

import numpy as np

from optim.privacy import tradeoff


def tradeoff_figure(noise_multiplier: float, sampling_rate: float, steps: int, *, ax=None, clt: bool = True,
                    value_discretization_interval: float = 1e-3):
  """Draws f(alpha) of DP-SGD (Poisson rate q, sigma, T steps) beside the bound's separation line; returns ax."""
  import matplotlib.pyplot as plt
  if ax is None:
    _, ax = plt.subplots(figsize=(4.5, 4.5))
  alpha = np.linspace(0, 1, 401)
  f = tradeoff.poisson_tradeoff(alpha, noise_multiplier, sampling_rate, steps,
                                value_discretization_interval=value_discretization_interval)
  ax.plot(alpha, f, label=f'PLD, kappa = {tradeoff.separation(alpha, f):.3f}')
  if clt:
    g = tradeoff.poisson_tradeoff(alpha, noise_multiplier, sampling_rate, steps, method='clt')
    ax.plot(alpha, g, '--', label=f'GDP CLT, kappa = {tradeoff.separation(alpha, g):.3f}')
  ax.plot(alpha, 1 - alpha, 'k:', lw=1, label='random guessing')
  m = max(2, int(round(1 / sampling_rate)))
  kappa = tradeoff.separation_lower_bound(m)
  floor = tradeoff.noise_lower_bound(m)
  gap = np.sqrt(2) * kappa  # the line alpha + beta = 1 - sqrt(2) kappa lies at distance kappa from the diagonal
  ax.plot(alpha, np.clip(1 - gap - alpha, 0, 1), 'r-', lw=1,
          label=f'kappa bound, M = {m} ({"applies" if noise_multiplier < floor else "void"}: '
                f'sigma {"<" if noise_multiplier < floor else ">="} {floor:.3f})')
  ax.set(xlabel='type I error alpha', ylabel='type II error beta', xlim=(0, 1), ylim=(0, 1),
         title=f'sigma = {noise_multiplier:.3g}, q = {sampling_rate:.3g}, T = {steps}')
  ax.legend(fontsize=7)
  return ax


def noise_floor_figure(num_steps=(10, 100, 10**3, 10**4, 10**6), *, ax=None):
  """Draws sigma_min(M) and the max test's crossing sigma against M (log axis); returns ax."""
  import matplotlib.pyplot as plt
  if ax is None:
    _, ax = plt.subplots(figsize=(5, 3.5))
  ms = np.asarray(num_steps)
  crossing = [tradeoff.max_test_crossing(int(m)) for m in ms]
  ax.semilogx(ms, tradeoff.noise_lower_bound(ms.astype(float)), 'o-', label='1/sqrt(2 ln M) (the bound)')
  ax.semilogx(ms, crossing, 's--', label='max test still meets the kappa bound')
  ax.set(xlabel='updates per epoch M', ylabel='noise multiplier sigma')
  ax.legend(fontsize=7)
  return ax
