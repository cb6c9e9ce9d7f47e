"""Hessian spectra of small MLPs: exact H, Gauss-Newton part and residual, SLQ, outliers, batch Hessians.

Exact, float64 experiments on networks small enough for a dense ``eigh`` (1-3k parameters), checking the
claims of Sagun et al. (arXiv 1706.04454) and Granziol, Zohren & Roberts (arXiv 2006.09092) against dense
oracles, with the matrix-free estimators taken from :mod:`optim` (``optim.hessian_matvec``, ``optim.slq``,
``optim.lanczos``). One module per concern:

* ``data``, ``model``, ``training``: Gaussian k-cluster data (:func:`gaussian_clusters`, :func:`pca_features` for
  real inputs), a tanh MLP with its cross-entropy, full-batch GD (:func:`train`).
* ``decomposition``: :func:`exact_decomposition`, ``H = G + R`` with the generalised Gauss-Newton part
  ``G = (1/N) sum_i J_i^T A_i J_i`` (``A_i = diag(p_i) - p_i p_i^T``, the softmax cross-entropy Hessian in
  logit space; PSD) and the residual ``R = (1/N) sum_i sum_c (p_ic - 1{c = y_i}) d^2 z_ic / dw^2``;
  :func:`class_decomposition`, Papyan's ``G = G_between + G_within`` (arXiv 1901.08244).
* ``slq_error``: :func:`slq_convergence`, the Wasserstein-1 distance between the SLQ spectral measure and the
  exact one as the Lanczos steps and probes grow.
* ``outliers``: :func:`spectrum_experiment`, :func:`outliers_vs_classes`, :func:`bulk_vs_width`. **Counting
  rule, fixed before the sweeps** (stated in full in ``theory/hessian/outliers.py``): an eigenvalue of ``H`` is
  an outlier iff it exceeds the bulk edge ``lambda_max(G_within)``; the prediction checked is ``k - 1`` outliers
  (Sagun et al. say "the number of classes"), next to a random-label baseline that is not the rule.
* ``batch_hessians``: :func:`batch_sharpness`, ``lambda_max`` of mini-batch Hessians ``H_B`` (batches drawn
  without replacement) against ``B``, with Granziol et al.'s spiked random-matrix prediction
  (:func:`granziol_prediction`). Measured (P = N = 600): the formula holds near ``B = N`` but underestimates
  ``lambda_max(H_B)`` six-fold at ``B = 8``, where ``lambda_max(H_B)`` follows ``1/B``.
* ``batch_size_lr``: the Marchenko-Pastur version (:func:`batch_spectrum`, :func:`marchenko_pastur_density`,
  :func:`spiked_top_eigenvalue`) and the learning-rate rules against a measured sweep (:func:`lr_scaling_sweep`,
  :func:`sgd_stability_threshold`).
* ``driver``: :func:`run` runs them all on synthetic k-cluster data (``small=True`` for a notebook-sized
  setting); ``plots``: the ``plot_*`` functions (matplotlib), which take the result dicts.

Every experiment function runs in float64 (``jax.enable_x64``) whatever the caller's setting, and returns a
dict of NumPy arrays and floats.
"""

from theory.hessian.batch_hessians import batch_sharpness, granziol_prediction
from theory.hessian.batch_size_lr import (batch_spectrum, lr_scaling_sweep, marchenko_pastur_density,
                                          marchenko_pastur_edges, sgd_stability_threshold, spiked_top_eigenvalue)
from theory.hessian.data import gaussian_clusters, pca_features
from theory.hessian.decomposition import Decomposition, class_decomposition, exact_decomposition
from theory.hessian.driver import run
from theory.hessian.model import cross_entropy, init_mlp, mlp_logits
from theory.hessian.outliers import bulk_vs_width, outliers_vs_classes, spectrum_experiment
from theory.hessian.plots import (plot_batch_sharpness, plot_bulk_vs_width, plot_decomposition,
                                  plot_outliers_vs_classes, plot_slq_error, plot_spectrum)
from theory.hessian.plots import plot_batch_spectrum, plot_lr_scaling
from theory.hessian.slq_error import slq_convergence, wasserstein1
from theory.hessian.training import train

__all__ = ['batch_sharpness', 'granziol_prediction', 'gaussian_clusters', 'pca_features', 'Decomposition',
           'class_decomposition', 'exact_decomposition', 'run', 'cross_entropy', 'init_mlp', 'mlp_logits',
           'bulk_vs_width', 'outliers_vs_classes', 'spectrum_experiment', 'plot_batch_sharpness',
           'plot_bulk_vs_width', 'plot_decomposition', 'plot_outliers_vs_classes', 'plot_slq_error',
           'plot_spectrum', 'slq_convergence', 'wasserstein1', 'train']
__all__ += ['batch_spectrum', 'lr_scaling_sweep', 'marchenko_pastur_density', 'marchenko_pastur_edges',
            'sgd_stability_threshold', 'spiked_top_eigenvalue', 'plot_batch_spectrum', 'plot_lr_scaling']
