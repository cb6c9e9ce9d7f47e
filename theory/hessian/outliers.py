"""Outliers and bulk of the exact Hessian spectrum of a trained MLP (Sagun et al., arXiv 1706.04454).

**Counting rule, fixed before the sweeps:** an eigenvalue of ``H`` is an outlier iff it exceeds the bulk edge
``lambda_max(G_within)``, where Papyan's class decomposition (arXiv 1901.08244) splits the GGN into
``G = G_between + G_within``: with the per-sample factors ``U_i = A_i^{1/2} J_i`` (``k x P``),
``G_between = sum_y pi_y M_y^T M_y`` built from the class means ``M_y = mean_{i: y_i = y} U_i`` and ``G_within``
from the deviations ``U_i - M_{y_i}``. Because ``1^T A_i^{1/2} = 0``, each ``M_y`` has rank ``<= k - 1``; the
prediction checked is ``k - 1`` outliers (Sagun et al. say "the number of classes"). A random-label baseline
(``lambda_max`` of the same network trained on shuffled labels) is reported next to it: with cross-entropy the
network cannot fit shuffled labels, its residuals stay large and its ``lambda_max`` exceeded every true-label
eigenvalue in all our runs, so it counts no outliers and is not the rule.

:func:`bulk_vs_width` follows the bulk and the outliers as the hidden width grows at fixed data.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax.numpy as jnp
import numpy as np

from theory.hessian.data import gaussian_clusters
from theory.hessian.decomposition import class_decomposition, exact_decomposition
from theory.hessian.model import cross_entropy, init_mlp, mlp_logits
from theory.hessian.training import train
from theory.numerics import float64


def _accuracy(params, x, y):
  return float(np.mean(np.asarray(mlp_logits(params, jnp.asarray(x)).argmax(-1)) == np.asarray(y)))


@float64
def spectrum_experiment(x: np.ndarray, y: np.ndarray, num_classes: int, hidden: Sequence[int] = (24,),
                        steps: int = 300, learning_rate: float = 0.5, seed: int = 0,
                        random_label_baseline: bool = True) -> dict[str, Any]:
  """Trains a tanh MLP by full-batch GD and returns the exact spectra of ``H``, ``G``, ``H - G`` and the outliers.

  Outliers follow the rule in the module docstring: eigenvalues of ``H`` above ``lambda_max(G_within)``.

  Args:
    x: inputs ``(N, d)``.
    y: labels ``(N,)``.
    num_classes: ``k``.
    hidden: hidden widths.
    steps: GD steps.
    learning_rate: GD step size.
    seed: seed of the initialisation (and of the label shuffle of the baseline).
    random_label_baseline: also train on shuffled labels and count eigenvalues above that ``lambda_max``.

  Returns:
    A dict with the eigenvalues ``eig_hessian``, ``eig_gauss_newton``, ``eig_residual`` (ascending),
    ``bulk_edge``, ``num_outliers``, ``outliers``, ``eig_between`` (top ``k^2``), ``loss``, ``accuracy``,
    ``num_params``, ``num_classes``, ``params`` (the trained parameters) and, with the baseline,
    ``random_label_edge`` and ``num_outliers_random_label``.
  """
  params, losses = train(init_mlp(seed, [x.shape[1], *hidden, num_classes]), x, y, steps, learning_rate)
  dec = exact_decomposition(params, x, y)
  eig_h = np.linalg.eigvalsh(dec.hessian)
  between, within = class_decomposition(params, x, y, num_classes)
  edge = float(np.linalg.eigvalsh(within)[-1])
  out = {
      'num_classes': num_classes, 'num_params': int(eig_h.size), 'loss': float(cross_entropy(params, x, y)),
      'accuracy': _accuracy(params, x, y), 'initial_loss': float(losses[0]),
      'eig_hessian': eig_h, 'eig_gauss_newton': np.linalg.eigvalsh(dec.gauss_newton),
      'eig_residual': np.linalg.eigvalsh(dec.residual),
      'eig_between': np.linalg.eigvalsh(between)[::-1][:num_classes ** 2],
      'bulk_edge': edge, 'num_outliers': int(np.sum(eig_h > edge)), 'outliers': eig_h[eig_h > edge][::-1],
      'params': params,
  }
  if random_label_baseline:
    shuffled = np.random.default_rng(seed).permutation(np.asarray(y))
    rparams, _ = train(init_mlp(seed, [x.shape[1], *hidden, num_classes]), x, shuffled, steps, learning_rate)
    redge = float(np.linalg.eigvalsh(exact_decomposition(rparams, x, shuffled).hessian)[-1])
    out['random_label_edge'] = redge
    out['num_outliers_random_label'] = int(np.sum(eig_h > redge))
  return out


def outliers_vs_classes(classes: Sequence[int] = (2, 3, 4, 5, 6, 8, 10), num_points: int = 600, dim: int = 20,
                        hidden: Sequence[int] = (24,), separation: float = 1.5, steps: int = 300,
                        learning_rate: float = 0.5, seeds: Sequence[int] = (0,),
                        random_label_baseline: bool = True) -> dict[str, Any]:
  """Outlier count against the number of classes ``k`` on k-cluster data (rule of the module docstring).

  Args:
    classes: values of ``k``.
    num_points: ``N``.
    dim: input dimension.
    hidden: hidden widths.
    separation: cluster-mean norm (noise 1).
    steps: GD steps.
    learning_rate: GD step size.
    seeds: one data set and initialisation per seed.
    random_label_baseline: also count against the random-label baseline (NaN otherwise).

  Returns:
    ``{'classes', 'num_outliers' (len(classes), len(seeds)), 'num_outliers_random_label', 'bulk_edge',
    'top_eigenvalues' (list of arrays), 'accuracy', 'loss'}``.
  """
  keys = ('num_outliers', 'num_outliers_random_label', 'bulk_edge', 'random_label_edge', 'accuracy', 'loss')
  table = {k: np.full((len(classes), len(seeds)), np.nan) for k in keys}
  tops = []
  for i, k in enumerate(classes):
    for j, s in enumerate(seeds):
      x, y = gaussian_clusters(1000 * s + k, num_points, dim, k, separation)
      r = spectrum_experiment(x, y, k, hidden, steps, learning_rate, seed=s,
                              random_label_baseline=random_label_baseline)
      for name in keys:
        table[name][i, j] = r.get(name, np.nan)
      if j == 0:
        tops.append(r['eig_hessian'][::-1][:k * k + 2])
  return {'classes': np.asarray(classes), 'top_eigenvalues': tops, **table}


def bulk_vs_width(widths: Sequence[int] = (8, 16, 32, 64), num_classes: int = 5, num_points: int = 600,
                  dim: int = 20, separation: float = 1.5, steps: int = 300, learning_rate: float = 0.5,
                  seed: int = 0) -> dict[str, Any]:
  """The spectrum of ``H`` as the hidden width grows at fixed data (Sagun et al.: only the bulk changes).

  Args:
    widths: hidden widths (one hidden layer).
    num_classes: ``k``.
    num_points: ``N``.
    dim: input dimension.
    separation: cluster-mean norm.
    steps: GD steps.
    learning_rate: GD step size.
    seed: data and initialisation seed.

  Returns:
    ``{'widths', 'num_params', 'eigenvalues' (list), 'bulk_edge', 'num_outliers', 'outliers' (list),
    'bulk_mean_abs', 'bulk_rms', 'near_zero_fraction'}``; the bulk is every eigenvalue at or below the edge and
    ``near_zero_fraction`` counts ``|lambda| < 1e-6 lambda_max``.
  """
  x, y = gaussian_clusters(seed, num_points, dim, num_classes, separation)
  out = {k: [] for k in ('num_params', 'eigenvalues', 'bulk_edge', 'num_outliers', 'outliers',
                         'bulk_mean_abs', 'bulk_rms', 'near_zero_fraction', 'accuracy')}
  for w in widths:
    r = spectrum_experiment(x, y, num_classes, (w,), steps, learning_rate, seed, random_label_baseline=False)
    eig = r['eig_hessian']
    bulk = eig[eig <= r['bulk_edge']]
    for name, value in (('num_params', r['num_params']), ('eigenvalues', eig), ('bulk_edge', r['bulk_edge']),
                        ('num_outliers', r['num_outliers']), ('outliers', r['outliers']),
                        ('bulk_mean_abs', float(np.abs(bulk).mean())),
                        ('bulk_rms', float(np.sqrt(np.mean(bulk ** 2)))),
                        ('near_zero_fraction', float(np.mean(np.abs(eig) < 1e-6 * eig[-1]))),
                        ('accuracy', r['accuracy'])):
      out[name].append(value)
  return {'widths': np.asarray(widths), **{k: (v if k in ('eigenvalues', 'outliers') else np.asarray(v))
                                           for k, v in out.items()}}
