"""Plots of the convex-training results."""

from __future__ import annotations

from typing import Any

import numpy as np

from theory.plotting import figure_axes, style_axes


def plot_convergence(result: dict[str, Any], ax=None):
  """Left: ADMM's relative distance to its final objective against iterations (every pattern, and sampled ones;
  the objective is taken at the group-sparse iterate, which meets the cone constraints only in the limit). Right:
  the non-convex GD runs' objective minus the certified dual bound against steps, next to the recovered network's."""
  fig, ax = figure_axes(ax, figsize=(10, 3.8), ncols=2)
  lb = result['lower_bound']
  for key, label in (('admm_all', f"all {result['num_patterns']} patterns"),
                     ('admm_sampled', f"{result['num_sampled']} sampled patterns")):
    f = result[key]
    ax[0].plot(np.maximum(np.abs(f - f[-1]) / abs(f[-1]), 1e-16), label=f'ADMM, {label}')
  style_axes(ax[0], 'iteration', '|f_k - f_final| / f_final', yscale='log')
  for i, c in enumerate(result['gd_curves']):
    ax[1].plot(np.maximum(c - lb, 1e-12), color='C1', alpha=0.6, lw=0.8, label='GD (non-convex)' if i == 0 else None)
  ax[1].axhline(result['upper_bound'] - lb, color='k', ls='--', lw=1, label='certified network')
  style_axes(ax[1], 'step', 'objective - dual bound', yscale='log', xscale='log')
  return fig


def plot_robustness(result: dict[str, Any], ax=None):
  """Held-out accuracy under the grid attack against the attack radius, one line per training radius."""
  fig, ax = figure_axes(ax)
  for i, e in enumerate(result['eps_train']):
    ax.plot(result['eps_attack'], result['test_accuracy'][i], 'o-', label=f'convex robust training, eps={e:g}')
  style_axes(ax, 'attack radius (l_inf)', 'test accuracy')
  return fig
