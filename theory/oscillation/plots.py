"""Plots of the benign-oscillation results: each function takes the dict of :func:`learning_rate_sweep`."""

from __future__ import annotations

from typing import Any

import numpy as np

from theory.oscillation.sweep import median_over_seeds
from theory.plotting import figure_axes, style_axes


def plot_weak_test_accuracy(result: dict[str, Any], ax=None):
  """Weak-only test accuracy and the weak-feature alignment ``A_v`` against the learning rate (median over
  seeds; the dotted line is ``2 / lambda_max`` at the end of the smallest learning rate's run)."""
  fig, ax = figure_axes(ax)
  lrs = result['learning_rates']
  ax.plot(lrs, median_over_seeds(result['weak_test_acc']), 'o-', label='weak-only test accuracy')
  ax.plot(lrs, median_over_seeds(result['align_weak']), 's--', label='A_v (weak feature)')
  ax.plot(lrs, median_over_seeds(result['align_strong']), '^--', label='A_u (strong feature)')
  ax.axvline(2.0 / np.median(result['sharpness']), color='k', ls=':', lw=0.8, label='2 / lambda_max')
  style_axes(ax, 'learning rate eta', 'median over seeds', xscale='log', fontsize=7)
  return fig


def plot_oscillation(result: dict[str, Any], ax=None, steps: int = 200):
  """The strong-feature residual ``mean y (f - y)`` over the last ``steps`` steps of the first seed, per rate."""
  fig, ax = figure_axes(ax)
  residual = result['curves']['strong_residual']
  for i, lr in enumerate(result['learning_rates']):
    if np.all(np.isfinite(residual[i])):
      ax.plot(np.arange(residual.shape[1])[-steps:], residual[i, -steps:], lw=0.8, label=f'eta = {lr:g}')
  style_axes(ax, 'SGD step', 'strong-feature residual y (f - y)', fontsize=7)
  return fig
