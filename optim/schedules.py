"""Learning-rate schedules from "When, Why and How Much? Adaptive Learning Rate Scheduling by Refinement".

Defazio, Cutkosky, Mehta & Mishchenko, arXiv 2310.07831. Worst-case theory for the last iterate picks linear
decay; given the gradient norms ``G_t`` of a previous run, the bound is minimised by the refined schedule

    w_t = G_t^{-2} (SGD, l2 norms)  or  G_t^{-1} (Adam-type, l1 norms of the gradient)
    eta_t = w_t * sum_{p > t} w_p / sum_p w_p,   eta_{T-1} = 0,   then eta <- peak * eta / max(eta)

computed offline, after smoothing ``G`` with a median filter, as in the authors' ``find_closed_form_schedule``
and README (github.com/facebookresearch/adaptive_scheduling). Constant norms give exactly linear decay. The
norm sequence is what a previous run logged each step (``optax.global_norm(grads)`` for the l2 version).
"""

from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp
import numpy as np
import optax

from optim import checks


def linear_decay_schedule(peak_value: float, total_steps: int, warmup_steps: int = 0) -> optax.Schedule:
  r"""Linear warm-up (optional) then linear decay to zero at the last step ``total_steps - 1``.

  .. math:: \eta_t = \eta_{peak} \frac{T - 1 - t}{T - 1 - W} \quad (t \ge W), \qquad
            \eta_t = \eta_{peak}\, t / W \quad (t < W)

  With ``warmup_steps=0`` this is the paper's ``1 - t/T`` schedule in 0-indexed steps (``t = 0`` is the first
  step at the peak, ``t = T - 1`` the last at zero), i.e. the refined schedule of constant gradient norms.

  Args:
    peak_value: the largest learning rate.
    total_steps: ``T``, number of steps of the run (> warmup_steps + 1).
    warmup_steps: ``W``, steps of linear warm-up from zero.

  Returns:
    An ``optax.Schedule`` (constant zero beyond ``T - 1``).

  Example:
    >>> from optim import linear_decay_schedule
    >>> schedule = linear_decay_schedule(1.0, total_steps=5)
    >>> [float(schedule(t)) for t in range(6)]
    [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]

  arXiv 2310.07831.
  """
  checks.non_negative('peak_value', peak_value)
  checks.check('warmup_steps', warmup_steps, lambda v: v >= 0 and v == int(v), 'an integer >= 0')
  checks.check('total_steps', total_steps, lambda v: v == int(v) and v >= warmup_steps + 2,
                f'an integer >= warmup_steps + 2 = {warmup_steps + 2}')
  decay = optax.linear_schedule(peak_value, 0.0, total_steps - 1 - warmup_steps)
  if warmup_steps == 0:
    return decay
  return optax.join_schedules([optax.linear_schedule(0.0, peak_value, warmup_steps), decay], [warmup_steps])


def median_smooth(values: np.ndarray, width: int) -> np.ndarray:
  """The authors' median filter: reflect-pad ``2 * width`` at the end, filter (edges 'nearest'), drop the pad.

  Equals ``scipy.ndimage.median_filter(np.pad(v, (0, 2w), 'reflect'), size=w, mode='nearest')[:-2w]`` for odd
  ``w`` (what their README prescribes), written with NumPy so the library does not need SciPy.
  """
  if width <= 1:
    return np.asarray(values, np.float64)
  pad = 2 * width
  padded = np.pad(np.asarray(values, np.float64), (0, pad), mode='reflect')
  half = width // 2
  edged = np.pad(padded, (half, width - 1 - half), mode='edge')
  windows = np.lib.stride_tricks.sliding_window_view(edged, width)
  return np.median(windows, axis=-1)[:-pad]


def refine(grad_norms: Sequence[float], norm: str = 'l2', smoothing: float = 0.1,
           total_steps: int | None = None) -> np.ndarray:
  """The refined schedule as a NumPy array of length ``total_steps``, with maximum 1 and last value 0.

  Args:
    grad_norms: the gradient norm of every step of a previous run (positive, finite).
    norm: ``'l2'`` (weights ``G^-2``, SGD) or ``'l1'`` (weights ``G^-1``, Adam-type with l1 norms).
    smoothing: median-filter width as a fraction of the length (the authors' 0.1); ``0`` disables it.
    total_steps: resample the norms (linear interpolation) to this many steps first (``None``: keep length).

  Returns:
    ``eta / max(eta)`` with ``eta_t = w_t * sum_{p > t} w_p / sum_p w_p``.
  """
  checks.one_of('norm', norm, ('l2', 'l1'))
  checks.check('smoothing', smoothing, lambda v: 0 <= v <= 1, 'in [0, 1]')
  g = np.asarray(grad_norms, np.float64)
  if g.ndim != 1 or g.size < 2:
    raise ValueError(f'grad_norms must be a 1-D sequence of at least 2 norms, got shape {g.shape}')
  if not np.all(np.isfinite(g) & (g > 0)):
    raise ValueError('grad_norms must be positive and finite')
  if total_steps is not None:
    checks.check('total_steps', total_steps, lambda v: v >= 2 and v == int(v), 'an integer >= 2')
    g = np.interp(np.linspace(0, g.size - 1, int(total_steps)), np.arange(g.size), g)
  width = 2 * (int(smoothing * g.size) // 2) + 1
  g = median_smooth(g, width)
  w = g ** (-2.0 if norm == 'l2' else -1.0)
  tail = np.cumsum(w[::-1])[::-1]  # tail[t] = sum_{p >= t} w_p
  eta = np.zeros_like(w)
  eta[:-1] = w[:-1] * tail[1:] / tail[0]
  return eta / np.max(eta)


def refined_schedule(grad_norms: Sequence[float], peak_value: float, norm: str = 'l2', smoothing: float = 0.1,
                     total_steps: int | None = None) -> optax.Schedule:
  r"""The learning-rate schedule refined from a previous run's gradient norms, as an optax schedule.

  .. math:: \eta_t \propto w_t \sum_{p > t} w_p, \qquad w_t = \tilde G_t^{-2} \text{ (l2) or } \tilde G_t^{-1}
            \text{ (l1)}, \qquad \max_t \eta_t = \eta_{peak}

  where :math:`\tilde G` is the median-smoothed norm sequence. Steps beyond the end return the last value, 0.

  Args:
    grad_norms: per-step gradient norms of a previous run.
    peak_value: the schedule's maximum.
    norm: ``'l2'`` or ``'l1'`` (see :func:`refine`).
    smoothing: median-filter width as a fraction of the length (0 disables).
    total_steps: length of the new run (``None``: that of ``grad_norms``).

  Returns:
    An ``optax.Schedule``.

  Example:
    >>> from optim import refined_schedule
    >>> schedule = refined_schedule([1.0] * 5, peak_value=1.0)  # constant norms: linear decay
    >>> [round(float(schedule(t)), 2) for t in range(5)]
    [1.0, 0.75, 0.5, 0.25, 0.0]

  arXiv 2310.07831.
  """
  checks.non_negative('peak_value', peak_value)
  values = jnp.asarray(peak_value * refine(grad_norms, norm, smoothing, total_steps))

  def schedule(count):
    return values[jnp.clip(count, 0, values.shape[0] - 1)]

  return schedule
