"""Plots of the stability results: each function takes the dict of one experiment and returns its figure."""

from __future__ import annotations

from typing import Any

import numpy as np

from theory.plotting import figure_axes, style_axes


def plot_stability_heatmap(linear: dict[str, Any], ax=None):
  """``log rho(T)`` over ``(B, eta)`` with the exact ``eta*(B)``, ``2/lambda_max``, ``2/tr(H)`` and trace bound."""
  fig, ax = figure_axes(ax)
  b, lrs, rho = linear['batch_sizes'], linear['learning_rates'], linear['rho']
  import matplotlib.colors as mcolors
  log_rho = np.log(rho)
  # Separate scales on the two sides of 0: decay rates below eta* are much smaller than growth rates above.
  norm = mcolors.TwoSlopeNorm(vmin=min(log_rho.min(), -1e-6), vcenter=0.0, vmax=max(log_rho.max(), 1e-6))
  mesh = ax.pcolormesh(np.arange(len(b) + 1) - 0.5, _edges(lrs), log_rho, cmap='RdBu_r', norm=norm,
                       shading='flat')
  fig.colorbar(mesh, ax=ax, label='log rho(T)  (>0: E||theta||^2 grows)')
  x = np.arange(len(b))
  ax.plot(x, linear['threshold'], 'k-', lw=2, label='exact eta*(B)')
  ax.plot(x, linear['bounds']['sharpness'], 'C2--', label='2 / lambda_max (GD)')
  ax.plot(x, linear['bounds']['two_over_trace'], 'C1--', label='2 / tr(H)')
  ax.plot(x, linear['bounds']['trace'], 'C1:', label='M = I bound (any B)')
  ax.set_xticks(x, [str(v) for v in b])
  style_axes(ax, 'batch size B', 'learning rate eta', yscale='log', fontsize=7, loc='lower right')
  return fig


def _edges(v):
  mid = np.sqrt(v[1:] * v[:-1])
  return np.concatenate([[v[0] ** 2 / mid[0]], mid, [v[-1] ** 2 / mid[-1]]])


def plot_monte_carlo(linear: dict[str, Any], ax=None):
  """Monte Carlo ``E ||theta_t||^2`` (band: 2 standard errors) against the operator's ``rho(T)^t``."""
  fig, ax = figure_axes(ax)
  for i, r in enumerate(linear['monte_carlo']):
    eta_ratio = 0.9 if r['rho'] < 1 else 1.1
    label = f"B={r['batch_size']}, eta={eta_ratio} eta*"
    ax.fill_between(r['steps'], r['mean_sq'] - 2 * r['stderr'], r['mean_sq'] + 2 * r['stderr'], color=f'C{i}',
                    alpha=0.3)
    ax.plot(r['steps'], r['mean_sq'], color=f'C{i}', label=label + ' (MC)')
    ax.plot(r['steps'], r['predicted'], 'k--', lw=0.8)
  ax.plot([], [], 'k--', lw=0.8, label='rho(T)^t')
  style_axes(ax, 'step t', 'E ||theta_t - theta*||^2', yscale='log', fontsize=7)
  return fig


def plot_sharpness_vs_lr(result: dict[str, Any], ax=None):
  """Measured ``lambda_max(H)`` (GD) and ``tr(H)`` (SGD, ``B = 1``) at the minima found, against ``2/eta``."""
  fig, ax = figure_axes(ax)
  lrs = result['learning_rates']
  runs = result['runs']
  n = max(runs)
  ax.plot(lrs, 2 / lrs, 'k-', lw=1, label='2 / eta')
  ax.plot(lrs, runs[n]['lambda_max'], 'o', color='C0', label='GD: lambda_max(H)')
  ax.plot(lrs, runs[n]['trace'], 'x', color='C0', label='GD: tr(H)')
  ax.plot(lrs, runs[1]['trace'], 's', color='C3', mfc='none', label='SGD B=1: tr(H)')
  ax.plot(lrs, runs[1]['lambda_max'], '^', color='C3', mfc='none', label='SGD B=1: lambda_max(H)')
  style_axes(ax, 'learning rate eta', 'sharpness at the minimum found', xscale='log', yscale='log',
             title=result['model'], fontsize=7)
  return fig


def plot_norm_vs_lr(result: dict[str, Any], ax=None):
  """``||beta||_1`` (diagonal) or the weighted path norm (ReLU) against ``1/eta``, GD and SGD."""
  fig, ax = figure_axes(ax)
  key = 'l1' if result['model'] == 'diagonal' else 'weighted_path_norm'
  lrs = result['learning_rates']
  ax.plot(lrs, 1 / lrs, 'k-', lw=1, label='1 / eta')
  for i, (b, r) in enumerate(sorted(result['runs'].items())):
    ax.plot(lrs, r[key], 'o-', color=f'C{i}', ms=4, label=f'B={b}' + (' (GD)' if b == max(result['runs']) else ''))
  style_axes(ax, 'learning rate eta', key, xscale='log', yscale='log', title=result['model'], fontsize=7)
  return fig
