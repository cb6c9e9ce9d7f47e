"""Plots of the coherence results: each function takes the dict of one experiment of :mod:`sweeps`."""

from __future__ import annotations

from typing import Any

from theory.plotting import figure_axes, style_axes


def plot_coherence(result: dict[str, Any], ax=None):
  """m-coherence of a fixed training sample through training, one curve per label-noise level."""
  fig, ax = figure_axes(ax)
  for i, (f, r) in enumerate(zip(result['fractions'], result['runs'])):
    ax.plot(r['steps'], r['m_coherence'], '-', color=f'C{i}', label=f'{f:.0%} random labels')
  ax.axhline(1.0, color='k', lw=0.8, ls=':', label='orthogonal gradients (1)')
  style_axes(ax, 'SGD step', f"m-coherence (m = {result['runs'][0]['coherence_size']})", yscale='log')
  return fig


def plot_suppression(result: dict[str, Any], ax=None):
  """Training accuracy on the corrupted examples (memorisation) and test accuracy, per aggregation."""
  fig, ax = figure_axes(ax, figsize=(10, 3.8), ncols=2)
  for i, (name, r) in enumerate(result['runs'].items()):
    ax[0].plot(r['steps'], r['train_corrupted_acc'], color=f'C{i}', label=name)
    ax[1].plot(r['steps'], r['test_acc'], color=f'C{i}', label=name)
  style_axes(ax[0], 'SGD step', 'train accuracy, corrupted labels', title=f"{result['fraction']:.0%} labels redrawn")
  style_axes(ax[1], 'SGD step', 'test accuracy (true labels)')
  return fig
