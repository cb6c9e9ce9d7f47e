"""Convex training of two-layer ReLU networks (library code of experiments/convex_relu.py; Bai, Gautam & Sojoudi,
2201.01965): ADMM, a duality-gap certificate of the global optimum, non-convex GD from several initialisations,
and convex adversarial training.

``run`` writes ``config.json``, ``results.json``, ``metrics.jsonl`` and ``convergence.png``, ``robustness.png``.
"""

from __future__ import annotations

import numpy as np

from experiments.lib.common import claims
from experiments.lib.common import results as results_lib
from theory import convex_relu

table = results_lib.headline_table


def _measure_global(headline):
  g = next(r for r in headline if r['part'] == 'global')
  return {k: g[k] for k in ('relative_gap', 'upper_bound', 'lower_bound', 'gd_within_1e-3', 'gd_median_excess',
                            'gd_min_excess', 'gd_flat', 'admm_sampled_error_300', 'admm_sampled_error_1000',
                            'num_patterns', 'num_neurons', 'width')}


def _assess_global(m) -> claims.Assessment:
  ours = (f"relative duality gap {m['relative_gap']:.1e} of the recovered {m['num_neurons']}-neuron network (all "
          f"{m['num_patterns']} patterns); ADMM (sampled patterns) error {m['admm_sampled_error_300']:.0e} at 300, "
          f"{m['admm_sampled_error_1000']:.0e} at 1000 iterations; GD at width {m['width']}: "
          f"{m['gd_within_1e-3']} of the inits within 1e-3, excess {m['gd_min_excess']:.1e} to "
          f"median {m['gd_median_excess']:.1e}, {m['gd_flat']} flat at the end")
  if m['relative_gap'] > 1e-2:
    return claims.Assessment(ours, 'disagree', 'the recovered network is not certified (gap above 1%)')
  if m['gd_within_1e-3'] > 0 and m['gd_median_excess'] < 1e-3:
    return claims.Assessment(ours, 'partly', 'certified optimum reached, but GD also reaches it here')
  if m['gd_flat'] == 0:
    return claims.Assessment(ours, 'partly', 'certified optimum reached; GD is above it but still moving at the end, '
                             'so no run is shown stuck')
  return claims.Assessment(ours, 'agree', 'ADMM converges linearly and the recovered network is certified optimal '
                           f"within its duality gap; {m['gd_flat']} GD runs at the same width have stalled above it "
                           '(the others are still above it, and moving, at the end of the budget)')


def _measure_adv(headline):
  a = next(r for r in headline if r['part'] == 'adversarial')
  return {k: a[k] for k in ('eps_train', 'eps_attack', 'test_accuracy', 'certified_train_accuracy', 'gap')}


def _assess_adv(m) -> claims.Assessment:
  acc = np.asarray(m['test_accuracy'])
  ours = (f"test accuracy at attack eps={m['eps_attack'][-1]}: {acc[0, -1]:.2f} (standard) vs "
          f"{max(acc[1:, -1]):.2f} (best robust); clean {acc[0, 0]:.2f} vs {acc[1:, 0].tolist()}")
  if max(acc[1:, -1]) > acc[0, -1] + 0.02:
    return claims.Assessment(ours, 'agree', 'convex robust training raises accuracy under attack')
  return claims.Assessment(ours, 'disagree', 'on this small XOR-like problem convex robust training does not raise '
                           'held-out accuracy under the attack (it is exact and certified on the training points)')


CLAIMS = (
    claims.Claim(
        id='convex_relu_global_optimum', experiment='convex_relu', title='Convex ReLU training: certified optimum',
        paper='Bai, Gautam & Sojoudi 2023', arxiv='2201.01965',
        claim='ADMM on the convex program trains a two-layer ReLU network to the global optimum (linear '
              'convergence), where back-propagation can get stuck',
        paper_number='linear global convergence; SGD sensitive to initialisation',
        measure=_measure_global, assess=_assess_global),
    claims.Claim(
        id='convex_relu_adversarial', experiment='convex_relu', title='Convex adversarial training (two-layer ReLU)',
        paper='Bai, Gautam & Sojoudi 2023', arxiv='2201.01965',
        claim='the convex robust program trains networks more robust to l_inf attacks',
        paper_number='higher robust accuracy than standard training (qualitative here)',
        measure=_measure_adv, assess=_assess_adv),
)


def run(cfg, workdir: str) -> list[dict]:
  """Runs both parts, writes JSON and figures, returns the headline records."""
  writer = results_lib.Writer(workdir, cfg)
  g = convex_relu.global_optimality(cfg.n, cfg.beta, cfg.rho, cfg.admm_iterations, cfg.num_gates, cfg.num_inits,
                                    cfg.gd_steps, cfg.gd_learning_rate, seed=cfg.seed)
  a = convex_relu.adversarial_training(cfg.adv_n, cfg.adv_test, cfg.beta, tuple(cfg.eps_train), tuple(cfg.eps_attack),
                                       cfg.adv_gates, cfg.seed)
  writer.figure(convex_relu.plot_convergence(g), 'convergence.png')
  writer.figure(convex_relu.plot_robustness(a), 'robustness.png')
  lb, ub = g['lower_bound'], g['upper_bound']
  sampled = g['admm_sampled']
  # ADMM on the sampled program: distance to its final value (the program's optimum once converged).
  err = lambda i: float(abs(sampled[min(i, len(sampled) - 1)] - sampled[-1]) / abs(sampled[-1]))
  excess = (g['gd_final'] - ub) / ub
  curves = g['gd_curves']
  tail = curves[:, -max(1, curves.shape[1] // 4)]
  flat = np.abs(tail - curves[:, -1]) / curves[:, -1] < 1e-3   # changed < 0.1% over the last quarter of the steps
  headline = [
      {'part': 'global', 'relative_gap': g['relative_gap'], 'upper_bound': ub, 'lower_bound': lb,
       'num_patterns': g['num_patterns'], 'num_neurons': g['num_neurons'], 'width': g['width'],
       'admm_sampled_error_300': err(300), 'admm_sampled_error_1000': err(1000),
       'admm_sampled_final': float(sampled[-1]),
       'gated_objective': g['gated_objective'], 'gd_final': g['gd_final'],
       'gd_within_1e-3': int(np.sum(excess < 1e-3)), 'gd_median_excess': float(np.median(excess)),
       'gd_min_excess': float(np.min(excess)), 'gd_flat': int(np.sum(flat))},
      {'part': 'adversarial', 'eps_train': a['eps_train'], 'eps_attack': a['eps_attack'],
       'test_accuracy': a['test_accuracy'], 'certified_train_accuracy': a['certified_train_accuracy'],
       'objective': a['objective'], 'gap': float(np.max(a['objective'] - a['lower_bound'])),
       'num_neurons': a['num_neurons'], 'num_patterns': a['num_patterns']},
  ]
  writer.results({'global': g, 'adversarial': a})
  writer.metrics(headline)
  return headline
