"""The benign-oscillation experiment: SGD over a grid of learning rates and seeds, read on weak-only test data."""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from optim.primitives import hessian_matvec, power_iteration
from theory.numerics import float64
from theory.oscillation.data import feature_noise_data
from theory.oscillation.model import loss
from theory.oscillation.training import oscillation_index, train_sgd, weak_only_accuracy


def median_over_seeds(values: np.ndarray) -> np.ndarray:
  """The median over seeds (axis 0) of the runs that stayed finite; NaN where every seed diverged."""
  with warnings.catch_warnings():
    warnings.simplefilter('ignore', RuntimeWarning)  # all-NaN columns: every seed diverged there
    return np.nanmedian(values, axis=0)


@float64
def sharpness(filters: np.ndarray, data: dict[str, np.ndarray], activation: str = 'relu2', kind: str = 'square',
              seed: int = 0) -> float:
  """``lambda_max`` of the full-batch Hessian at ``filters`` (power iteration on :func:`optim.hessian_matvec`):
  GD on the local quadratic model is stable for ``eta < 2 / lambda_max``."""
  x, y = jnp.asarray(data['x']), jnp.asarray(data['y'])
  w = jnp.asarray(filters)
  matvec = hessian_matvec(lambda p: loss(p, x, y, activation, kind), w)
  values, _ = power_iteration(matvec, w, jax.random.key(seed), k=1, num_iters=100)
  return float(values[0])


def learning_rate_sweep(learning_rates: Sequence[float], seeds: Sequence[int] = (0, 1, 2, 3, 4), *,
                        num_points: int = 200, num_test: int = 2000, data_kw: dict | None = None,
                        **train_kw: Any) -> dict[str, Any]:
  """For every seed (a fresh training set, initialisation and batch order) and learning rate: train, then measure
  the weak-only test accuracy, the alignments ``A_v`` (weak) and ``A_u`` (strong), the oscillation index, the final
  loss, and ``lambda_max`` at the end of the smallest learning rate's run (the sharpness that sets "large").

  A run diverges when its filters or final loss are not finite or the loss ends above 10x its initial value; its
  metrics are then NaN.

  Args:
    learning_rates: the grid of ``eta``, increasing.
    seeds: seeds.
    num_points: training set size ``n``.
    num_test: weak-only test set size.
    data_kw: keyword arguments of :func:`feature_noise_data` (dim, strong_fraction, norms, noise).
    **train_kw: keyword arguments of :func:`train_sgd`.

  Returns:
    ``{'learning_rates', 'seeds', 'weak_test_acc', 'align_weak', 'align_strong', 'oscillation', 'final_loss',
    'diverged'}`` (each ``(seeds, L)``), ``'sharpness'`` (``(seeds,)``), and ``'curves'``: the first seed's
    training output (loss and alignment curves) for the plots.
  """
  data_kw = dict(data_kw or {})
  rows, curves = [], None
  for s in seeds:
    train = feature_noise_data(s, num_points, **data_kw)
    test = feature_noise_data(10_000 + s, num_test, strong=False, **data_kw)
    out = train_sgd(train, learning_rates, seed=s, **train_kw)
    first, final = out['loss'][:, 0], out['loss'][:, -1]
    finite = np.isfinite(out['filters']).reshape(len(learning_rates), -1).all(axis=1)
    diverged = ~finite | ~np.isfinite(final) | (final > 10 * first)
    nan = lambda a: np.where(diverged, np.nan, a)
    rows.append({
        'weak_test_acc': nan(weak_only_accuracy(out['filters'], test, train_kw.get('activation', 'relu2'))),
        'align_weak': nan(out['align_weak'][:, -1]), 'align_strong': nan(out['align_strong'][:, -1]),
        'oscillation': nan(oscillation_index(out['strong_residual'])), 'final_loss': nan(final), 'diverged': diverged,
        'sharpness': sharpness(out['filters'][0], train, train_kw.get('activation', 'relu2'),
                               train_kw.get('kind', 'square'), s),
    })
    if curves is None:
      curves = {k: out[k] for k in ('loss', 'strong_residual', 'steps', 'align_weak', 'align_strong')}
  result = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
  result.update(learning_rates=np.asarray(learning_rates, float), seeds=np.asarray(seeds), curves=curves)
  return result
