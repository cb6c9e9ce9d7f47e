"""Hessian spectra of small MLPs (Sagun et al. 1706.04454; Granziol et al. 2006.09092), exact in float64
(library code of experiments/hessian_spectrum.py).

On k-cluster data: the exact spectra of H, its Gauss-Newton part and the residual; SLQ against them (W1);
outliers (eigenvalues of H above lambda_max(G_within)) against the number of classes; the bulk against width;
lambda_max of mini-batch Hessians against B with the spiked random-matrix prediction. On digits (or MNIST) reduced
by PCA: the spectrum and its outlier count. ``run`` writes ``config.json``, ``results.json``, ``metrics.jsonl``
(one headline record per part) and ``spectrum.png``, ``decomposition.png``, ``slq_error.png``,
``outliers_vs_classes.png``, ``bulk_vs_width.png``, ``batch_sharpness.png``, ``spectrum_real.png``.
"""

from __future__ import annotations

import numpy as np

from experiments.lib.common import claims
from experiments.lib.common import data as data_lib
from experiments.lib.common import results as results_lib
from theory import hessian

table = results_lib.headline_table


def _outliers(headline: list[dict]) -> dict:
  parts = {r['part']: r for r in headline}
  classes, real = parts['classes'], parts['real']
  return {'classes': classes['classes'], 'outliers': [float(np.mean(o)) for o in classes['num_outliers']],
          'outliers_random_label': [float(np.mean(o)) for o in classes['num_outliers_random_label']],
          'real_data': real['data'], 'real_outliers': real['num_outliers']}


def _assess_outliers(m) -> claims.Assessment:
  pairs = ', '.join(f'{k}:{o:g}' for k, o in zip(m['classes'], m['outliers']))
  ours = f"outliers by classes k {pairs}; {m['real_data']} (10 classes): {m['real_outliers']}"
  ks, outs = np.asarray(m['classes']), np.asarray(m['outliers'])
  synthetic = bool(np.all((outs == ks) | (outs == ks - 1)))
  real = m['real_outliers'] in (9, 10)
  if synthetic and real:
    return claims.Assessment(ours, 'agree', 'k or k - 1 outliers for every k, and on real data')
  if synthetic:
    return claims.Assessment(ours, 'partly', f"k or k - 1 outliers on k Gaussian clusters for every k (none with "
                             f"random labels), but {m['real_outliers']} on {m['real_data']} with 10 classes")
  grows = len(outs) > 1 and np.all(np.diff(outs) >= 0) and outs[-1] > outs[0]
  if grows and max(m['outliers_random_label']) == 0:
    return claims.Assessment(ours, 'partly', 'outliers come with the class structure (none with random labels) and '
                             'grow with k, but their count is not k (nor k - 1) for every k')
  return claims.Assessment(ours, 'disagree', 'the outlier count does not follow the number of classes')


CLAIMS = (
    claims.Claim(
        id='hessian_outliers', experiment='hessian_spectrum', title='Hessian outliers follow the classes',
        paper='Sagun et al. 2017', arxiv='1706.04454',
        claim='the Hessian spectrum is a bulk near zero plus outliers; adding clusters (classes) changes only the '
              'outliers, whose number follows the number of classes',
        paper_number='about k outliers for k classes (an empirical count; k - 1 in Papyan\'s refinement, 1901.08244)',
        measure=_outliers, assess=_assess_outliers),
)


def real_data(cfg) -> tuple[np.ndarray, np.ndarray, str]:
  """Digits (embedded) or MNIST (``cfg.data_dir``), first ``real_points`` training images, PCA to ``pca_dim``."""
  ds, name = data_lib.load_images(cfg.data_dir, cfg.seed), 'mnist' if cfg.data_dir else 'digits'
  x, y = ds.x_train[:cfg.real_points], ds.y_train[:cfg.real_points]
  return hessian.pca_features(x, cfg.pca_dim), y, f'{name}-pca{cfg.pca_dim}'


def run(cfg, workdir: str) -> list[dict]:
  """Runs every part, writes JSON and figures, returns the headline records."""
  writer = results_lib.Writer(workdir, cfg)
  x, y = hessian.gaussian_clusters(cfg.seed, cfg.num_points, cfg.dim, cfg.num_classes, cfg.separation)
  spectrum = hessian.spectrum_experiment(x, y, cfg.num_classes, (cfg.hidden,), cfg.steps, cfg.learning_rate,
                                         cfg.seed)
  params = spectrum.pop('params')
  dec = hessian.exact_decomposition(params, x, y)
  slq = hessian.slq_convergence(params, x, y, spectrum['eig_hessian'], cfg.slq_steps, cfg.slq_probes,
                                cfg.slq_repeats, cfg.seed)
  batch = hessian.batch_sharpness(params, x, y, dec.hessian, cfg.batch_sizes, cfg.num_batches, seed=cfg.seed)
  classes = hessian.outliers_vs_classes(cfg.classes, cfg.num_points, cfg.dim, (cfg.hidden,), cfg.separation,
                                        cfg.steps, cfg.learning_rate,
                                        tuple(range(cfg.seed, cfg.seed + cfg.class_seeds)))
  width = hessian.bulk_vs_width(cfg.widths, cfg.num_classes, cfg.num_points, cfg.dim, cfg.separation, cfg.steps,
                                cfg.learning_rate, cfg.seed)
  xr, yr, real_name = real_data(cfg)
  real = hessian.spectrum_experiment(xr, yr, 10, (cfg.real_hidden,), cfg.steps, cfg.learning_rate, cfg.seed)
  real.pop('params')
  real['data'] = real_name

  writer.figure(hessian.plot_spectrum(spectrum, slq), 'spectrum.png')
  writer.figure(hessian.plot_decomposition(spectrum), 'decomposition.png')
  writer.figure(hessian.plot_slq_error(slq), 'slq_error.png')
  writer.figure(hessian.plot_outliers_vs_classes(classes), 'outliers_vs_classes.png')
  writer.figure(hessian.plot_bulk_vs_width(width), 'bulk_vs_width.png')
  writer.figure(hessian.plot_batch_sharpness(batch), 'batch_sharpness.png')
  fig = hessian.plot_spectrum(real)
  fig.axes[0].set_title(real_name, fontsize=9)
  writer.figure(fig, 'spectrum_real.png')

  fro = lambda a: float(np.linalg.norm(a))
  headline = [
      {'part': 'spectrum', 'num_params': spectrum['num_params'], 'num_classes': cfg.num_classes,
       'num_outliers': spectrum['num_outliers'], 'predicted': cfg.num_classes - 1, 'bulk_edge': spectrum['bulk_edge'],
       'outliers': spectrum['outliers'], 'num_outliers_random_label': spectrum['num_outliers_random_label'],
       'random_label_edge': spectrum['random_label_edge'], 'loss': spectrum['loss'], 'accuracy': spectrum['accuracy'],
       'min_eig_gauss_newton': float(spectrum['eig_gauss_newton'][0]),
       'residual_over_hessian_fro': fro(dec.residual) / fro(dec.hessian)},
      {'part': 'slq', 'steps': slq['steps'], 'probes': slq['probes'],
       'w1_over_range': slq['w1'] / slq['spectral_range']},
      {'part': 'classes', 'classes': classes['classes'], 'num_outliers': classes['num_outliers'],
       'predicted': classes['classes'] - 1, 'num_outliers_random_label': classes['num_outliers_random_label'],
       'accuracy': classes['accuracy']},
      {'part': 'width', 'widths': width['widths'], 'num_params': width['num_params'],
       'num_outliers': width['num_outliers'], 'top_outlier': [o[0] if len(o) else None for o in width['outliers']],
       'bulk_edge': width['bulk_edge'], 'bulk_rms': width['bulk_rms'],
       'near_zero_fraction': width['near_zero_fraction']},
      {'part': 'batch', 'batch_sizes': batch['batch_sizes'], 'lambda_max_mean': batch['lambda_max'].mean(1),
       'prediction': batch['prediction'], 'lambda_max_full': batch['lambda_max_full']},
      {'part': 'real', 'data': real_name, 'num_params': real['num_params'], 'num_outliers': real['num_outliers'],
       'predicted': 9, 'num_outliers_random_label': real['num_outliers_random_label'], 'accuracy': real['accuracy'],
       'top_eigenvalues': real['eig_hessian'][::-1][:12], 'bulk_edge': real['bulk_edge']},
  ]
  results = {'spectrum': spectrum, 'slq': slq, 'batch': batch, 'classes': classes, 'width': width, 'real': real}
  writer.results(results)
  writer.metrics(headline)
  return headline
