"""Plots of the SGD-noise results: each function takes one result dict and returns its axes."""

from __future__ import annotations

from typing import Any

import numpy as np

from theory.plotting import figure_axes, style_axes


def plot_phase_diagram(result: dict[str, Any], ax=None):
  """Median test error on the ``(alpha, T)`` grid as a heat map (unconverged cells hatched with 'x')."""
  fig, ax = figure_axes(ax, figsize=(5, 3.8))
  err = np.median(result['test_error'], axis=-1)
  im = ax.imshow(err, origin='lower', aspect='auto', cmap='viridis')
  ax.set_xticks(range(len(result['temperatures'])), [f'{t:g}' for t in result['temperatures']])
  ax.set_yticks(range(len(result['alphas'])), [f'{a:g}' for a in result['alphas']])
  conv = np.all(result['converged'], axis=-1)
  for i, j in zip(*np.nonzero(~conv)):
    ax.text(j, i, 'x', ha='center', va='center', color='w')
  for i, j in zip(*np.nonzero(conv)):
    ax.text(j, i, f'{err[i, j]:.3f}', ha='center', va='center', color='w', fontsize=7)
  ax.set(xlabel='temperature $T = \\eta / B$', ylabel='$\\alpha$',
         title=f"test error, P = {result['num_train']}")
  fig.colorbar(im, ax=ax)
  return ax


def plot_crossover(result: dict[str, Any], axes=None):
  """Relative weight change against ``T`` for each ``P`` (left) and ``T_c`` against ``P`` with its fit (right)."""
  _, axes = figure_axes(axes, figsize=(10, 3.6), ncols=2)
  temps = result['temperatures']
  for i, p in enumerate(result['sizes']):
    axes[0].loglog(temps, np.median(result['weight_change'][i], axis=-1), 'o-', ms=3, label=f'P = {p}')
  style_axes(axes[0], 'temperature $T$', '$\\|w - w_0\\| / \\|w_0\\|$', xscale='log',
             title=f"alpha = {result['alpha']:g}")
  for name, marker in (('weight_change', 'o'), ('t_star', 's')):
    tc = result[f'tc_{name}']
    axes[1].loglog(result['sizes'], tc, marker + '-', ms=4,
                   label=f"from {name.replace('_', ' ')}: slope {result[f'exponent_{name}']:.2f}")
  style_axes(axes[1], 'training-set size $P$', '$T_c$', xscale='log')
  return axes


def plot_perceptron(result: dict[str, Any], axes=None):
  """Training time ``t*`` and signal ``w_1`` at stopping against ``T``, one curve per ``(chi, P)``."""
  _, axes = figure_axes(axes, figsize=(10, 3.6), ncols=2)
  temps = result['temperatures']
  for a, chi in enumerate(result['chis']):
    for b, p in enumerate(result['sizes']):
      style = dict(color=f'C{b}', ls='-' if a == 0 else '--', marker='o', ms=3)
      label = f'P = {p}' if a == 0 else None
      axes[0].loglog(temps, np.median(result['t_star'][a, b], axis=-1), label=label, **style)
      axes[1].loglog(temps, np.median(result['w1'][a, b], axis=-1), label=label, **style)
  style_axes(axes[0], 'temperature $T$', '$t^* = \\eta \\times$ steps', xscale='log',
             title='perceptron; ' + ', '.join(f"{'solid' if a == 0 else 'dashed'} chi = {c:g}"
                                               for a, c in enumerate(result['chis'][:2])))
  style_axes(axes[1], 'temperature $T$', 'signal $w_1$ at zero loss', xscale='log')
  return axes
