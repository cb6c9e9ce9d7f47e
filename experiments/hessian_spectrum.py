"""Hessian spectra of small MLPs (Sagun et al. 1706.04454; Granziol et al. 2006.09092), exact in float64.

    python -m experiments.hessian_spectrum --workdir=/tmp/polyak/hessian
    python -m experiments.hessian_spectrum --config=experiments/configs/hessian_spectrum.py:smoke
    python -m experiments.hessian_spectrum --config.data_dir=../shared/data/mnist   # MNIST-PCA instead of digits

On k-cluster data: the exact spectra of H, its Gauss-Newton part and the residual; SLQ against them (W1);
outliers (eigenvalues of H above lambda_max(G_within)) against the number of classes; the bulk against width;
lambda_max of mini-batch Hessians against B with the spiked random-matrix prediction. On digits (or MNIST) reduced
by PCA: the spectrum and its outlier count. Writes ``config.json``, ``results.json``, ``metrics.jsonl`` (one
headline record per part) and ``spectrum.png``, ``decomposition.png``, ``slq_error.png``,
``outliers_vs_classes.png``, ``bulk_vs_width.png``, ``batch_sharpness.png``, ``spectrum_real.png``.
"""

from __future__ import annotations

import json
import os

from absl import app, flags
import jax
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
from ml_collections import config_flags
import numpy as np

from experiments.lib import data as data_lib
from experiments.lib.jsonable import jsonable
from theory import hessian

_CONFIG = config_flags.DEFINE_config_file('config', os.path.join(os.path.dirname(__file__), 'configs',
                                                                 'hessian_spectrum.py'))
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/hessian', 'Where results and plots go.')


def real_data(cfg) -> tuple[np.ndarray, np.ndarray, str]:
  """Digits (embedded) or MNIST (``cfg.data_dir``), first ``real_points`` training images, PCA to ``pca_dim``."""
  if cfg.data_dir:
    ds, name = data_lib.load_mnist(cfg.data_dir, seed=cfg.seed), 'mnist'
  else:
    ds, name = data_lib.load_digits(seed=cfg.seed), 'digits'
  x, y = ds.x_train[:cfg.real_points], ds.y_train[:cfg.real_points]
  return hessian.pca_features(x, cfg.pca_dim), y, f'{name}-pca{cfg.pca_dim}'


def _save(fig, workdir, name):
  fig.tight_layout()
  fig.savefig(os.path.join(workdir, name), dpi=120)
  plt.close(fig)


def run(cfg, workdir: str) -> list[dict]:
  """Runs every part, writes JSON and figures, returns the headline records."""
  os.makedirs(workdir, exist_ok=True)
  x, y = hessian.gaussian_clusters(cfg.seed, cfg.num_points, cfg.dim, cfg.num_classes, cfg.separation)
  spectrum = hessian.spectrum_experiment(x, y, cfg.num_classes, (cfg.hidden,), cfg.steps, cfg.learning_rate,
                                         cfg.seed)
  params = spectrum.pop('params')
  dec = hessian.exact_decomposition(params, x, y)
  slq = hessian.slq_convergence(params, x, y, spectrum['eig_hessian'], cfg.slq_steps, cfg.slq_probes,
                                cfg.slq_repeats, cfg.seed)
  batch = hessian.batch_sharpness(params, x, y, dec.hessian, cfg.batch_sizes, cfg.num_batches, seed=cfg.seed)
  classes = hessian.outliers_vs_classes(cfg.classes, cfg.num_points, cfg.dim, (cfg.hidden,), cfg.separation,
                                        cfg.steps, cfg.learning_rate, tuple(range(cfg.seed, cfg.seed + cfg.class_seeds)))
  width = hessian.bulk_vs_width(cfg.widths, cfg.num_classes, cfg.num_points, cfg.dim, cfg.separation, cfg.steps,
                                cfg.learning_rate, cfg.seed)
  xr, yr, real_name = real_data(cfg)
  real = hessian.spectrum_experiment(xr, yr, 10, (cfg.real_hidden,), cfg.steps, cfg.learning_rate, cfg.seed)
  real.pop('params')
  real['data'] = real_name

  _save(hessian.plot_spectrum(spectrum, slq), workdir, 'spectrum.png')
  _save(hessian.plot_decomposition(spectrum), workdir, 'decomposition.png')
  _save(hessian.plot_slq_error(slq), workdir, 'slq_error.png')
  _save(hessian.plot_outliers_vs_classes(classes), workdir, 'outliers_vs_classes.png')
  _save(hessian.plot_bulk_vs_width(width), workdir, 'bulk_vs_width.png')
  _save(hessian.plot_batch_sharpness(batch), workdir, 'batch_sharpness.png')
  fig = hessian.plot_spectrum(real)
  fig.axes[0].set_title(real_name, fontsize=9)
  _save(fig, workdir, 'spectrum_real.png')

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
       'bulk_edge': width['bulk_edge'], 'bulk_rms': width['bulk_rms'], 'near_zero_fraction': width['near_zero_fraction']},
      {'part': 'batch', 'batch_sizes': batch['batch_sizes'], 'lambda_max_mean': batch['lambda_max'].mean(1),
       'prediction': batch['prediction'], 'lambda_max_full': batch['lambda_max_full']},
      {'part': 'real', 'data': real_name, 'num_params': real['num_params'], 'num_outliers': real['num_outliers'],
       'predicted': 9, 'num_outliers_random_label': real['num_outliers_random_label'], 'accuracy': real['accuracy'],
       'top_eigenvalues': real['eig_hessian'][::-1][:12], 'bulk_edge': real['bulk_edge']},
  ]
  results = {'spectrum': spectrum, 'slq': slq, 'batch': batch, 'classes': classes, 'width': width, 'real': real}
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    f.write(cfg.to_json(indent=2))
  with open(os.path.join(workdir, 'results.json'), 'w') as f:
    json.dump(jsonable(results), f)
  with open(os.path.join(workdir, 'metrics.jsonl'), 'w') as f:
    for rec in headline:
      f.write(json.dumps(jsonable(rec)) + '\n')
  return headline


def main(argv):
  del argv
  for rec in run(_CONFIG.value, _WORKDIR.value):
    print(json.dumps(jsonable(rec)))
  print(f'\nwrote {_WORKDIR.value}/results.json, metrics.jsonl and the PNGs')


if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(main)
