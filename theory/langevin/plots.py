"""Plots of the Langevin-averaging results: each function takes the dict of one experiment and returns its axes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from theory.plotting import figure_axes


def plot_collapse(result: dict[str, Any], name: str = 'average', axes=None):
  """Median overlap against ``n / d^{k/2}`` and ``n / d^{ceil(k/2)}``, one curve per ``d``."""
  k = result['k']
  _, axes = figure_axes(axes, figsize=(10, 3.5), ncols=2, sharey=True)
  med = np.median(result[name], axis=-1)
  for ax, power, label in ((axes[0], k / 2, f'n / d^{k / 2:g}'), (axes[1], math.ceil(k / 2),
                                                                  f'n / d^{math.ceil(k / 2)}')):
    for i, d in enumerate(result['dims']):
      ax.semilogx(result['n'][i] / d ** power, med[i], 'o-', ms=3, label=f'd = {d}')
    ax.set(xlabel=label, title=f"{result['model']} k={k}: {name}")
  axes[0].set_ylabel('overlap with $\\theta^*$')
  axes[0].legend(fontsize=7)
  return axes


def plot_trace(trace: dict[str, np.ndarray], ax=None):
  """Overlap of the last iterate and of the running average against time."""
  _, ax = figure_axes(ax, figsize=(5, 3.5))
  ax.plot(trace['time'], trace['trace_last'], lw=0.8, label='last iterate')
  ax.plot(trace['time'], trace['trace_average'], lw=1.5, label='averaged iterate')
  ax.axhline(trace['d'] ** -0.5, color='0.5', ls=':', label='$d^{-1/2}$')
  ax.axhline(float(trace['oracle']), color='k', ls='--', lw=0.8, label='oracle')
  ax.set(xlabel='time $t$', ylabel='overlap', title=f"{trace['model']} k={trace['k']}, d={trace['d']}")
  ax.legend(fontsize=7)
  return ax
