"""Learning rates as a function of batch size (library code of experiments/batch_size_lr.py; Granziol, Zohren &
Roberts, 2006.09092): the Marchenko-Pastur/BBP top eigenvalue of batch Hessians, and the measured best and
largest-stable learning rates of SGD and Adam against B beside the linear and square-root rules.

``run`` writes ``config.json``, ``results.json``, ``metrics.jsonl``, ``batch_spectrum.png``, ``lr_scaling.png``.
"""

from __future__ import annotations

import numpy as np

from experiments.lib.common import claims
from experiments.lib.common import results as results_lib
from theory import hessian

table = results_lib.headline_table


def _measure(headline):
  s = next(r for r in headline if r['part'] == 'spectrum')
  l = next(r for r in headline if r['part'] == 'lr_scaling')
  return {'top_over_bbp_max_dev': s['max_relative_deviation'], **{k: l[k] for k in (
      'slope_sgd_max_stable', 'slope_sgd_threshold', 'slope_sgd_best', 'slope_adam_best', 'slope_adam_max_stable',
      'slope_sgd_best_small_b', 'slope_adam_best_small_b')}}


def _assess(m) -> claims.Assessment:
  ours = (f"lambda_max(H_B) within {100 * m['top_over_bbp_max_dev']:.0f}% of MP/BBP; slopes of log eta vs log B: "
          f"SGD largest stable {m['slope_sgd_max_stable']:.2f} (exact {m['slope_sgd_threshold']:.2f}), SGD best "
          f"{m['slope_sgd_best_small_b']:.2f} (B <= 8); Adam best {m['slope_adam_best']:.2f}, largest stable "
          f"{m['slope_adam_max_stable']:.2f}")
  linear = abs(m['slope_sgd_max_stable'] - m['slope_sgd_threshold']) < 0.15 and m['slope_sgd_max_stable'] > 0.7
  sqrt_adam = [abs(m[k] - 0.5) < 0.2 for k in ('slope_adam_best', 'slope_adam_max_stable')]
  if linear and all(sqrt_adam):
    return claims.Assessment(ours, 'agree', 'linear for SGD and square root for Adam')
  if linear:
    adam = ('the largest stable learning rate grows like sqrt(B), the best one at a fixed step budget does not'
            if sqrt_adam[1] else 'neither the best nor the largest stable learning rate grows like sqrt(B)')
    return claims.Assessment(ours, 'partly', f'SGD: linear, as the MP edge predicts; Adam on online least squares: '
                             f'{adam}')
  return claims.Assessment(ours, 'disagree', 'the SGD learning rate does not scale linearly with B')


CLAIMS = (
    claims.Claim(
        id='batch_size_lr_scaling', experiment='batch_size_lr', title='Learning rate vs batch size (RMT)',
        paper='Granziol, Zohren & Roberts 2022', arxiv='2006.09092',
        claim='batch-Hessian extremal eigenvalues grow like 1/B (random-matrix model), so the learning rate scales '
              'linearly with B for SGD and as sqrt(B) for Adam',
        paper_number='eta ~ B (SGD), eta ~ sqrt(B) (Adam)', measure=_measure, assess=_assess),
)


def run(cfg, workdir: str) -> list[dict]:
  """Runs the spectrum check and the sweep, writes JSON and figures, returns the headline records."""
  writer = results_lib.Writer(workdir, cfg)
  spec = hessian.batch_spectrum(cfg.spectrum_dim, tuple(cfg.spectrum_batches), cfg.spike, cfg.spectrum_repeats,
                                cfg.seed)
  sweep = hessian.lr_scaling_sweep(cfg.dim, tuple(cfg.batch_sizes), cfg.steps, cfg.noise, cfg.num_lrs, seeds=cfg.seeds,
                                   seed=cfg.seed)
  writer.figure(hessian.plot_batch_spectrum(spec, index=0), 'batch_spectrum.png')
  writer.figure(hessian.plot_lr_scaling(sweep), 'lr_scaling.png')
  ratio = spec['lambda_max'].mean(1) / spec['predicted_top']
  b = sweep['batch_sizes']
  small = b <= max(8, b.min())
  slope = lambda v: float(np.polyfit(np.log(b[small]), np.log(v[small]), 1)[0]) if small.sum() > 1 else float('nan')
  headline = [
      {'part': 'spectrum', 'batch_sizes': spec['batch_sizes'], 'gamma': spec['gamma'], 'spike': spec['spike'],
       'lambda_max_mean': spec['lambda_max'].mean(1), 'predicted_top': spec['predicted_top'],
       'max_relative_deviation': float(np.max(np.abs(ratio - 1)))},
      {'part': 'lr_scaling', 'batch_sizes': b, 'sgd_best': sweep['sgd_best'], 'adam_best': sweep['adam_best'],
       'sgd_max_stable': sweep['sgd_max_stable'], 'adam_max_stable': sweep['adam_max_stable'],
       'sgd_threshold': sweep['sgd_threshold'],
       **{f'slope_{k}': v for k, v in sweep['slopes'].items()},
       'slope_sgd_best_small_b': slope(sweep['sgd_best']), 'slope_adam_best_small_b': slope(sweep['adam_best'])},
  ]
  writer.results({'spectrum': {k: v for k, v in spec.items() if k != 'eigenvalues'}, 'sweep': sweep})
  writer.metrics(headline)
  return headline
