"""Plots of the directional-sharpness results: each function takes the dict of :func:`sharpness_along_training`."""

from __future__ import annotations

from typing import Any

import numpy as np

from theory.plotting import figure_axes, style_axes


def plot_sharpness(result: dict[str, dict[str, Any]], ax=None):
  """Directional sharpness along training: each optimizer's update (solid), the gradient at its points (dashed)
  and the clipped gradient (dotted)."""
  fig, ax = figure_axes(ax)
  for i, (name, r) in enumerate(result.items()):
    ax.plot(r['steps'], r['sharpness_update'], '-', color=f'C{i}', label=f'{name}: update')
    ax.plot(r['steps'], r['sharpness_gradient'], '--', color=f'C{i}', lw=0.9, label=f'{name}: gradient')
    ax.plot(r['steps'], r['sharpness_clipped_gradient'], ':', color=f'C{i}', lw=0.9, label=f'{name}: clipped grad')
  style_axes(ax, 'step', 'v^T H v / ||v||^2', yscale='log', fontsize=6, ncol=2)
  return fig


def plot_losses(result: dict[str, dict[str, Any]], ax=None, smooth: int = 10):
  """Training loss (mini-batch, moving average over ``smooth`` steps) of each optimizer."""
  fig, ax = figure_axes(ax)
  for i, (name, r) in enumerate(result.items()):
    loss = np.convolve(r['train_loss'], np.ones(smooth) / smooth, mode='valid')
    ax.plot(np.arange(len(loss)) + smooth, loss, color=f'C{i}', label=name)
  style_axes(ax, 'step', 'training loss (moving average)')
  return fig
