"""Plots of the SGN results: each function takes the dict of one experiment and returns its axes."""

from __future__ import annotations

import numpy as np

from theory.plotting import figure_axes


def plot_margins(sweep: dict, ax=None):
  """Euclidean, SGN and true margins against the coupling ``lambda``."""
  _, ax = figure_axes(ax, figsize=(5, 3.5))
  ax.plot(sweep['lambdas'], sweep['gamma_euc'], 'k--', label=r'Euclidean $\gamma_{\min}$')
  ax.plot(sweep['lambdas'], sweep['alpha_true'], 'b-', label=r'true $\alpha_{true}$')
  ax.plot(sweep['lambdas'], sweep['alpha_sgn'], 'g-.', label=r'SGN $\alpha_*$')
  ax.axhline(0, color='0.5', lw=0.8)
  ax.set(xlabel=r'coupling $\lambda$', ylabel='margin', ylim=(-1, 1.1), title='LQ game: margins')
  ax.legend()
  return ax


def plot_band(band: dict, ax=None):
  """``alpha*(r)`` and ``alpha_true(r)`` against ``r = w_2 / w_1`` with the certified band shaded."""
  _, ax = figure_axes(ax, figsize=(5, 3.5))
  ax.semilogx(band['ratios'], band['alpha_true'], label=r'true $\alpha_{true}(r)$')
  ax.semilogx(band['ratios'], band['alpha_sgn'], '--', label=r'SGN $\alpha_*(r)$')
  lo, hi = band['band']
  if np.isfinite(lo):
    ax.axvspan(lo, hi, color='tab:orange', alpha=0.15, label='band (closed form)')
    ax.axvline(lo, color='tab:orange', ls=':')
    ax.axvline(hi, color='tab:orange', ls=':')
  ax.axhline(0, color='0.5', lw=0.8)
  ax.set(xlabel=r'$r = w_2 / w_1$', ylabel='margin', title=f"timescale band at $\\lambda$ = {band['lam']}",
         ylim=(max(-3, np.min(band['alpha_sgn'])), None))
  ax.legend()
  return ax


def plot_phase(phase: dict, method: str = 'euler', ax=None):
  """The ``(lambda, h)`` plane: true threshold, certified step, simulated runs (filled = contracted)."""
  _, ax = figure_axes(ax, figsize=(5, 3.5))
  sweep = phase['sweep']
  bound = sweep['euler_bound' if method == 'euler' else 'rk4_guideline']
  ax.plot(sweep['lambdas'], sweep[f'{method}_true'], 'r-', lw=2, label='true stability')
  ax.plot(sweep['lambdas'], bound, '--', color='tab:orange', label='SGN ' + ('bound' if method == 'euler'
                                                                              else 'guideline'))
  recs = [r for r in phase['records'] if r['method'] == method]
  ok = [r for r in recs if r['rate'] < 1]
  bad = [r for r in recs if r['rate'] >= 1]
  ax.scatter([r['lam'] for r in ok], [r['h'] for r in ok], s=12, c='tab:green', label='simulated: contracts')
  ax.scatter([r['lam'] for r in bad], [r['h'] for r in bad], s=12, marker='x', c='k', label='simulated: not')
  ax.axvspan(0, sweep['lambdas'][np.argmax(sweep['gamma_euc'] <= 0)], color='0.9', label='Euclidean monotone')
  ax.set(xlabel=r'coupling $\lambda$', ylabel='step $h$', title=f'LQ game: {method} phase diagram',
         ylim=(0, 1.2 * np.max(sweep[f'{method}_true'])))
  ax.legend(fontsize=7)
  return ax


def plot_markov(res: dict, axes=None):
  """Markov game: ``alpha*(r)`` with its band, and convergence probability against ``eta / eta_max``."""
  _, axes = figure_axes(axes, figsize=(10, 3.5), ncols=2)
  ax = axes[0]
  ax.semilogx(res['ratios'], res['alpha_of_r'], 'g--', label=r'$\alpha_*(r)$')
  lo, hi = res['band']
  if np.isfinite(lo):
    ax.axvspan(lo, hi, color='tab:orange', alpha=0.15, label='band')
  ax.axhline(0, color='0.5', lw=0.8)
  ax.set(xlabel=r'$r = w_2/w_1$', ylabel='SGN margin', title='Markov game: Fisher-metric band')
  ax.legend()
  ax = axes[1]
  ax.semilogx(res['multipliers'], res['convergence_strict'], 'o-', label=r'NPG: reaches $\theta^*$')
  ax.semilogx(res['multipliers'], res['convergence_official'], 's:', ms=4, label='NPG: official criterion')
  ax.axvline(1, color='k', ls='--', label=r'certified $\eta_{\max}$')
  ax.axvline(res['eta_linear'] / res['eta_max'], color='r', ls=':', label='exact linear threshold')
  ax.set(xlabel=r'$\eta / \eta_{\max}$', ylabel='P(converge)', title='Markov game: NPG stability')
  ax.legend(fontsize=7)
  return axes
