"""Plots of the last-iterate results: suboptimality against ``T`` with the paper's rate beside it."""

from __future__ import annotations

import numpy as np

from theory.plotting import figure_axes, style_axes


def plot_rates(cases: list[dict], ax=None):
  """Median (solid) and 0.9 quantile (dotted) of ``F(x_T) - F*`` per case, with the bound's shape (dashed, scaled
  to the median at the first ``T``), log-log."""
  fig, ax = figure_axes(ax, figsize=(6.5, 4.5))
  for i, c in enumerate(cases):
    ts, color = c['T'], f'C{i}'
    ax.plot(ts, c['median'], color=color, label=f"{c['name']}: slope {c['slopes'][0.5]:.2f} "
            f"(bound {c['predicted_exponent']:.2f})")
    ax.plot(ts, c['q90'], color=color, ls=':', lw=1)
    shape = np.asarray(c['bound_shape'])
    ax.plot(ts, shape * c['median'][0] / shape[0], color=color, ls='--', lw=0.8, alpha=0.7)
  style_axes(ax, 'T (stochastic gradients)', 'F(x_T) - F*', xscale='log', yscale='log', fontsize=7)
  return fig
