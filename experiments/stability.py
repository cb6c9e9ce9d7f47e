"""Linear stability of SGD: the exact threshold eta*(B), tr(H) <= 2/eta (B = 1) vs lambda_max <= 2/eta (GD),
and the minima GD and SGD reach on diagonal linear and two-layer ReLU networks (Wu & Su, 2305.17490).

    python -m experiments.stability --workdir=/tmp/polyak/stability
    python -m experiments.stability --config=experiments/configs/stability.py:smoke

Writes ``config.json``, ``results.json``, ``metrics.jsonl`` (headline records) and ``stability_heatmap.png``,
``monte_carlo.png``, ``sharpness_diagonal.png``, ``sharpness_relu.png``, ``norm_diagonal.png``, ``norm_relu.png``.
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

from experiments.lib.jsonable import jsonable
from theory import stability

_CONFIG = config_flags.DEFINE_config_file('config', os.path.join(os.path.dirname(__file__), 'configs',
                                                                 'stability.py'))
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/stability', 'Where results and plots go.')


def _save(fig, workdir, name):
  fig.tight_layout()
  fig.savefig(os.path.join(workdir, name), dpi=120)
  plt.close(fig)


def _nonlinear_headline(result) -> list[dict]:
  lrs = result['learning_rates']
  rows = []
  for b, r in sorted(result['runs'].items()):
    ok = r['converged']
    row = {'part': result['model'], 'batch_size': b, 'converged': int(ok.sum()), 'of': len(lrs),
           'max_converged_eta': float(lrs[ok].max()) if ok.any() else None}
    if ok.any():
      row.update({'max_eta_lambda_max': float(np.nanmax(lrs * r['lambda_max'])),
                  'max_eta_trace': float(np.nanmax(lrs * r['trace'])),
                  'max_eta_over_threshold': float(np.nanmax(lrs / r['threshold'])),
                  'test_error_at_max_eta': float(r['test_error'][ok][-1]),
                  'max_lanczos_rel_error': float(np.nanmax(np.abs(r['lanczos_lambda_max'] / r['lambda_max'] - 1))),
                  'max_hutchinson_z': float(np.nanmax(np.abs(r['hutchinson_trace'] - r['trace'])
                                                      / r['hutchinson_stderr']))})
      norm = 'l1' if result['model'] == 'diagonal' else 'weighted_path_norm'
      row[f'max_eta_{norm}'] = float(np.nanmax(lrs * r[norm]))
    rows.append(row)
  return rows


def run(cfg, workdir: str) -> list[dict]:
  """Runs the linear and nonlinear experiments, writes JSON and figures, returns the headline records."""
  os.makedirs(workdir, exist_ok=True)
  linear = stability.linear_experiment(cfg.seed, cfg.num_points, cfg.dim, cfg.num_lrs, None, cfg.num_chains,
                                       cfg.mc_steps, cfg.survey_cases)
  diag_data = stability.sparse_regression_data(cfg.seed, cfg.diag_points, cfg.diag_dim, cfg.diag_sparsity)
  relu_data = stability.sphere_teacher_data(cfg.seed, cfg.relu_points, cfg.relu_dim)
  diagonal = stability.nonlinear_experiment(
      'diagonal', diag_data, np.geomspace(*cfg.diag_lrs), (1, cfg.middle_batch, cfg.diag_points), cfg.diag_steps,
      cfg.tolerance, cfg.seed, init_scale=cfg.diag_init)
  relu = stability.nonlinear_experiment(
      'relu', relu_data, np.geomspace(*cfg.relu_lrs), (1, cfg.middle_batch, cfg.relu_points), cfg.relu_steps,
      cfg.tolerance, cfg.seed, cfg.relu_width, cfg.relu_init)

  _save(stability.plot_stability_heatmap(linear), workdir, 'stability_heatmap.png')
  _save(stability.plot_monte_carlo(linear), workdir, 'monte_carlo.png')
  for result in (diagonal, relu):
    _save(stability.plot_sharpness_vs_lr(result), workdir, f"sharpness_{result['model']}.png")
    _save(stability.plot_norm_vs_lr(result), workdir, f"norm_{result['model']}.png")

  g = linear['grads']
  h = g.T @ g / len(g)
  lam_max, tr = np.linalg.eigvalsh(h)[-1], np.trace(h)
  b, thr = linear['batch_sizes'], linear['threshold']
  survey = linear['survey']
  headline = [
      {'part': 'linear', 'batch_sizes': b, 'threshold': thr, 'gd_eta_lambda_max': float(thr[-1] * lam_max),
       'eta_trace': thr * tr, 'trace_bound_ratio': thr / linear['bounds']['trace'],
       'monotone_in_b': bool(np.all(np.diff(thr) >= 0))},
      {'part': 'survey', **{k: {'min': float(v.min()), 'max': float(v.max())} for k, v in survey.items()}},
      *[{'part': 'monte_carlo', 'batch_size': r['batch_size'], 'log_rho': float(np.log(r['rho'])),
         'fitted_log_rate': r['fitted_log_rate'], 'steps': int(r['steps'][-1]),
         'final_mean_over_predicted': float(r['mean_sq'][-1] / r['predicted'][-1]),
         'final_median': float(r['median_sq'][-1])} for r in linear['monte_carlo']],
      *_nonlinear_headline(diagonal), *_nonlinear_headline(relu),
  ]
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    f.write(cfg.to_json(indent=2))
  with open(os.path.join(workdir, 'results.json'), 'w') as f:
    json.dump(jsonable({'linear': linear, 'diagonal': diagonal, 'relu': relu}), f)
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
