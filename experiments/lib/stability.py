"""Linear stability of SGD (library code of experiments/stability.py): the exact threshold eta*(B),
tr(H) <= 2/eta (B = 1) against lambda_max <= 2/eta (GD), and the minima GD and SGD reach on diagonal linear and
two-layer ReLU networks (Wu & Su, 2305.17490).

``run`` writes ``config.json``, ``results.json``, ``metrics.jsonl`` (headline records) and
``stability_heatmap.png``, ``monte_carlo.png``, ``sharpness_diagonal.png``, ``sharpness_relu.png``,
``norm_diagonal.png``, ``norm_relu.png``.
"""

from __future__ import annotations

import numpy as np

from experiments.lib.common import claims
from experiments.lib.common import results as results_lib
from theory import stability

table = results_lib.headline_table


def _trace_threshold(headline: list[dict]) -> dict:
  linear = next(r for r in headline if r['part'] == 'linear')
  survey = next(r for r in headline if r['part'] == 'survey')
  return {'b1_max_eta_trace': survey['b1_unequal']['max'], 'b1_equal_norms_eta_trace': survey['b1_equal']['max'],
          'b2_max_eta_trace': survey['b2_equal']['max'], 'b4_max_eta_trace': survey['b4_equal']['max'],
          'gd_eta_lambda_max': linear['gd_eta_lambda_max']}


def _assess_trace_threshold(m) -> claims.Assessment:
  ours = (f"B = 1: max eta* tr(H) = {m['b1_max_eta_trace']:.4f} (= {m['b1_equal_norms_eta_trace']:.4f} with equal "
          f"gradient norms); GD: eta* lambda_max = {m['gd_eta_lambda_max']:.4f}; B = 2, 4: up to "
          f"{m['b2_max_eta_trace']:.2f}, {m['b4_max_eta_trace']:.2f}")
  b1 = max(m['b1_max_eta_trace'], m['b1_equal_norms_eta_trace'])
  holds = b1 <= 2 + 1e-9 and abs(m['gd_eta_lambda_max'] - 2) < 1e-6
  if not holds:
    return claims.Assessment(ours, 'disagree', 'the exact threshold exceeds 2/tr(H) at B = 1')
  if m['b2_max_eta_trace'] > 2 + 1e-6:
    return claims.Assessment(ours, 'partly', 'exact at B = 1 (tight for equal per-sample gradient norms), but for '
                             'B >= 2 the exact threshold exceeds 2/tr(H): the bound needs a batch-size factor')
  return claims.Assessment(ours, 'agree', 'eta* tr(H) <= 2 at every batch size tried')


CLAIMS = (
    claims.Claim(
        id='stability_trace_threshold', experiment='stability', title='SGD stability: tr(H) <= 2/eta',
        paper='Wu & Su 2023', arxiv='2305.17490',
        claim='a minimum linearly stable for SGD has tr(H) <= 2/eta, while GD constrains only lambda_max <= 2/eta',
        paper_number='eta tr(H) <= 2 (SGD); eta lambda_max <= 2 (GD)',
        measure=_trace_threshold, assess=_assess_trace_threshold),
)


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
  writer = results_lib.Writer(workdir, cfg)
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

  writer.figure(stability.plot_stability_heatmap(linear), 'stability_heatmap.png')
  writer.figure(stability.plot_monte_carlo(linear), 'monte_carlo.png')
  for result in (diagonal, relu):
    writer.figure(stability.plot_sharpness_vs_lr(result), f"sharpness_{result['model']}.png")
    writer.figure(stability.plot_norm_vs_lr(result), f"norm_{result['model']}.png")

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
  writer.results({'linear': linear, 'diagonal': diagonal, 'relu': relu})
  writer.metrics(headline)
  return headline
