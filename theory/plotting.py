"""Axes and tick styling shared by the ``plots`` modules of the theory families.

matplotlib is imported inside the functions, so that importing :mod:`theory` does not load it (nor pick a
backend) for users who only compute.
"""

from __future__ import annotations

import math


def figure_axes(ax=None, figsize: tuple[float, float] = (5.5, 3.8), ncols: int = 1, **subplot_kw):
  """``(figure, axes)``: the given ``ax`` and its figure, or a new figure with ``ncols`` axes side by side.

  Args:
    ax: axes to draw on (a sequence of ``ncols`` axes when ``ncols > 1``), or None for a new figure.
    figsize: size of a new figure, in inches.
    ncols: number of axes of a new figure.
    **subplot_kw: passed to ``plt.subplots`` for a new figure (e.g. ``sharey=True``).

  Returns:
    ``(fig, ax)``, with ``ax`` an array of axes when ``ncols > 1``.
  """
  if ax is None:
    import matplotlib.pyplot as plt
    return plt.subplots(1, ncols, figsize=figsize, **subplot_kw)
  return (ax if ncols == 1 else ax[0]).figure, ax


def sparse_minor_labels():
  """A minor-tick formatter for log axes that labels only the ticks at 2x and 5x a power of ten.

  Default minor log-scale labels collide on ranges of about a decade.

  Example:
    >>> fmt = sparse_minor_labels()
    >>> [fmt(v, 0) for v in (2.0, 3.0, 50.0)]
    ['2', '', '50']
  """
  import matplotlib.ticker

  def fmt(v, _):
    lead = v / 10 ** math.floor(math.log10(v)) if v > 0 else 0.0
    return f'{v:g}' if round(lead) in (2, 5) else ''

  return matplotlib.ticker.FuncFormatter(fmt)


def style_axes(ax, xlabel: str, ylabel: str, *, xscale: str | None = None, yscale: str | None = None,
               title: str | None = None, **legend_kw):
  """Axis labels, optional scales and title, and the legend: the closing lines every theory plot shares.

  Args:
    ax: the axes.
    xlabel: x-axis label.
    ylabel: y-axis label.
    xscale: e.g. ``'log'`` (its minor ticks then get :func:`sparse_minor_labels`); None keeps the scale.
    yscale: e.g. ``'log'``; None keeps the scale.
    title: a small (9 pt) title, or None.
    **legend_kw: passed to ``ax.legend`` (default ``fontsize=8``).
  """
  if xscale is not None:
    ax.set_xscale(xscale)
    if xscale == 'log':
      ax.xaxis.set_minor_formatter(sparse_minor_labels())
  if yscale is not None:
    ax.set_yscale(yscale)
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  if title is not None:
    ax.set_title(title, fontsize=9)
  ax.legend(**{'fontsize': 8, **legend_kw})
