"""Plots of the Hessian-spectrum results: each function takes the dict of one experiment and returns its figure."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from theory.plotting import figure_axes, style_axes


def plot_spectrum(spectrum: dict[str, Any], slq: dict[str, Any] | None = None, ax=None):
  """Log-density of the exact spectrum of ``H`` (histogram), the SLQ estimate, outliers and the bulk edge."""
  fig, ax = figure_axes(ax)
  eig = spectrum['eig_hessian']
  lo, hi = eig.min(), eig.max()
  pad = 0.05 * (hi - lo)
  bins = np.linspace(lo - pad, hi + pad, 120)
  counts, _, _ = ax.hist(eig, bins=bins, density=True, color='0.6', label=f'exact eig(H), P={eig.size}')
  top = counts.max()
  if slq is not None:
    grid = np.linspace(lo - pad, hi + pad, 2000)
    sigma = (hi - lo) / 150
    dens = np.sum(slq['weights'][..., None] * np.exp(-0.5 * ((grid - slq['nodes'][..., None]) / sigma) ** 2),
                  axis=(0, 1)) / (sigma * math.sqrt(2 * math.pi))
    ax.plot(grid, dens, 'C0', lw=1.2, label=f"SLQ (m={slq['steps'][-1]}, {slq['probes'][-1]} probes)")
    top = max(top, dens.max())
  ax.axvline(spectrum['bulk_edge'], color='k', ls='--', lw=1, label='bulk edge $\\lambda_{max}(G_{within})$')
  for o in spectrum['outliers']:
    ax.axvline(o, color='C3', lw=1, alpha=0.8)
  ax.plot([], [], 'C3', label=f"{spectrum['num_outliers']} outliers (k={spectrum['num_classes']})")
  ax.set_ylim(1e-3, 3 * top)
  style_axes(ax, 'eigenvalue', 'density', yscale='log', fontsize=7)
  return fig


def plot_decomposition(spectrum: dict[str, Any], ax=None):
  """Sorted eigenvalues of ``H``, the Gauss-Newton part ``G`` and the residual ``H - G`` (symlog scale)."""
  fig, ax = figure_axes(ax)
  for name, label in (('eig_hessian', 'H'), ('eig_gauss_newton', 'G (GGN)'), ('eig_residual', 'H - G')):
    ax.plot(spectrum[name][::-1], label=label)
  ax.set_yscale('symlog', linthresh=1e-6)
  style_axes(ax, 'index (descending)', 'eigenvalue', xscale='log')
  return fig


def plot_slq_error(slq: dict[str, Any], ax=None):
  """W1(SLQ, exact) / spectral range against Lanczos steps, one line per probe count."""
  fig, ax = figure_axes(ax)
  for j, v in enumerate(slq['probes']):
    ax.errorbar(slq['steps'], slq['w1'][:, j] / slq['spectral_range'],
                yerr=slq['w1_std'][:, j] / slq['spectral_range'], marker='o', ms=3, label=f'{v} probes')
  style_axes(ax, 'Lanczos steps m', 'W1 / spectral range', xscale='log', yscale='log')
  return fig


def plot_outliers_vs_classes(classes: dict[str, Any], ax=None):
  """Outlier count against the number of classes, with the ``k - 1`` and ``k`` lines."""
  fig, ax = figure_axes(ax)
  k = classes['classes']
  counts = classes['num_outliers']
  ax.plot(k, counts.mean(1), 'o-', label='outliers above $\\lambda_{max}(G_{within})$')
  if np.all(np.isfinite(classes['num_outliers_random_label'])):
    ax.plot(k, classes['num_outliers_random_label'].mean(1), 's:', label='above random-label $\\lambda_{max}$')
  ax.plot(k, k - 1, 'k--', lw=1, label='k - 1')
  ax.plot(k, k, 'k:', lw=1, label='k')
  style_axes(ax, 'number of classes k', 'number of outliers')
  return fig


def plot_bulk_vs_width(width: dict[str, Any], ax=None):
  """Bulk density (histogram of eigenvalues below the edge) per hidden width, outliers as ticks."""
  fig, ax = figure_axes(ax)
  for i, w in enumerate(width['widths']):
    eig = width['eigenvalues'][i]
    bulk = eig[eig <= width['bulk_edge'][i]]
    ax.hist(bulk, bins=80, density=True, histtype='step', color=f'C{i}',
            label=f"width {w} (P={width['num_params'][i]})")
    for o in width['outliers'][i]:
      ax.axvline(o, color=f'C{i}', lw=0.8, ymax=0.15)
  style_axes(ax, 'eigenvalue', 'bulk density', yscale='log', fontsize=7)
  return fig


def plot_batch_sharpness(batch: dict[str, Any], ax=None):
  """``lambda_max(H_B)`` against ``B`` (5-95% band over batches), the RMT prediction and ``lambda_max(H)``."""
  fig, ax = figure_axes(ax)
  b = batch['batch_sizes']
  lam = batch['lambda_max']
  ax.fill_between(b, np.percentile(lam, 5, axis=1), np.percentile(lam, 95, axis=1), alpha=0.3, color='C0')
  ax.plot(b, lam.mean(1), 'o-', color='C0', label='measured $\\lambda_{max}(H_B)$ (Lanczos)')
  ax.plot(b, batch['prediction'], 'k--', label='spiked-Wigner prediction')
  ax.plot(b, batch['inverse_scaling'], ':', color='C2', label='$\\propto 1/B$')
  ax.axhline(batch['lambda_max_full'], color='C3', lw=1, label='$\\lambda_{max}(H)$')
  style_axes(ax, 'batch size B', 'largest eigenvalue', xscale='log', yscale='log')
  return fig


def plot_batch_spectrum(spectrum: dict[str, Any], index: int = 0, ax=None):
  """Histogram of the eigenvalues of one batch Hessian ``X_B^T X_B / B`` against the Marchenko-Pastur density."""
  from theory.hessian.batch_size_lr import marchenko_pastur_density
  fig, ax = figure_axes(ax)
  eig, gamma = spectrum['eigenvalues'][index], spectrum['gamma'][index]
  eig = eig[eig > 1e-9]
  ax.hist(eig, bins=60, density=True, color='0.6', label=f"eig(H_B), B={spectrum['batch_sizes'][index]}")
  grid = np.linspace(max(eig.min() * 0.9, 1e-6), eig.max() * 1.05, 800)
  mass = min(1.0, 1.0 / gamma)
  ax.plot(grid, marchenko_pastur_density(grid, gamma) / mass, 'C0', label=f'Marchenko-Pastur, gamma={gamma:.2f}')
  style_axes(ax, 'eigenvalue', 'density')
  return fig


def plot_lr_scaling(sweep: dict[str, Any], ax=None):
  """Best and largest-stable learning rates against the batch size, with the exact SGD threshold and the linear
  and square-root references."""
  fig, ax = figure_axes(ax)
  b = sweep['batch_sizes']
  ax.plot(b, sweep['sgd_max_stable'], 'o-', label=f"SGD largest stable (slope {sweep['slopes']['sgd_max_stable']:.2f})")
  ax.plot(b, sweep['sgd_threshold'], 'k--', lw=1, label='SGD exact threshold 2B/(B+d+1)')
  ax.plot(b, sweep['sgd_best'], 's-', label=f"SGD best (slope {sweep['slopes']['sgd_best']:.2f})")
  ax.plot(b, sweep['adam_best'], '^-', label=f"Adam best (slope {sweep['slopes']['adam_best']:.2f})")
  ax.plot(b, sweep['adam_max_stable'], 'v-',
          label=f"Adam largest stable (slope {sweep['slopes']['adam_max_stable']:.2f})")
  ax.plot(b, sweep['adam_best'][0] * np.sqrt(b / b[0]), 'C2:', lw=1, label='sqrt(B) from Adam at B_min')
  style_axes(ax, 'batch size B', 'learning rate', xscale='log', yscale='log', fontsize=7)
  return fig
