"""Plots of the tensor-program kernel results: each function takes one result dict and returns its axes."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from theory.kernels.rmt import mp_density, mp_edges, semicircle_density
from theory.plotting import figure_axes, style_axes


def plot_width_sweep(results: Sequence[dict[str, Any]], ax=None):
  """RMS relative error of the empirical NNGP (dashed) and NTK (solid) against width, one colour per network,
  with a ``width^{-1/2}`` guide."""
  _, ax = figure_axes(ax, figsize=(5.5, 4))
  for i, r in enumerate(results):
    color = f'C{i}'
    ax.loglog(r['widths'], r['ntk_rms'], 'o-', color=color, ms=3,
              label=f"{r['name']} NTK (slope {r['ntk_slope']:.2f})")
    ax.loglog(r['widths'], r['nngp_rms'], 's--', color=color, ms=3, lw=0.8,
              label=f"NNGP ({r['nngp_slope']:.2f})")
  w = np.asarray(results[0]['widths'], float)
  ax.loglog(w, 0.5 * results[0]['ntk_rms'][0] * (w / w[0]) ** -0.5, 'k:', lw=1, label='width$^{-1/2}$')
  style_axes(ax, 'width', r'$\|K_{emp} - K_\infty\|_F / \|K_\infty\|_F$', xscale='log', fontsize=6, ncol=2)
  return ax


def plot_spectra(wigner: np.ndarray, wishart: np.ndarray, ratio: float, axes=None):
  """Histograms of a sampled Wigner and Wishart spectrum over the semicircle and Marchenko-Pastur densities."""
  _, axes = figure_axes(axes, figsize=(9, 3.3), ncols=2)
  grid = np.linspace(-2.2, 2.2, 400)
  axes[0].hist(wigner, bins=40, density=True, color='0.75')
  axes[0].plot(grid, semicircle_density(grid), 'k', lw=1.2)
  axes[0].set(xlabel='eigenvalue', ylabel='density', title=f'Wigner, n = {len(wigner)}: semicircle')
  a, b = mp_edges(ratio)
  grid = np.linspace(0.8 * a, 1.1 * b, 400)
  axes[1].hist(wishart, bins=40, density=True, color='0.75')
  axes[1].plot(grid, mp_density(grid, ratio), 'k', lw=1.2)
  axes[1].set(xlabel='eigenvalue', title=f'Wishart, n = {len(wishart)}, n/m = {ratio:g}: Marchenko-Pastur')
  return axes
