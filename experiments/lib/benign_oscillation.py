"""Benign oscillation (Lu, Wu, Yang & Zou, 2310.17074), exact in float64 (library code of
experiments/benign_oscillation.py).

SGD on a two-layer CNN over a grid of learning rates and seeds, on the feature-noise data model; each run is read
on fresh weak-only test data, with the alignments of the filters along the weak and the strong feature, the
oscillation of the residual on the strong-feature examples, and ``lambda_max`` of the Hessian where the smallest
learning rate ends. ``run`` writes ``config.json``, ``results.json``, ``metrics.jsonl``, ``weak_test_accuracy.png``
and ``oscillation.png``.
"""

from __future__ import annotations

import numpy as np

from experiments.lib.common import claims
from experiments.lib.common import results as results_lib
from theory import oscillation

table = results_lib.headline_table


def _weak_features(headline: list[dict]) -> dict:
  r = headline[0]
  lrs = list(r['learning_rates'])
  i, j = lrs.index(r['small_lr']), lrs.index(r['large_lr'])
  pick = lambda key, k: r[key][k]
  return {'small_lr': r['small_lr'], 'large_lr': r['large_lr'], 'two_over_sharpness': r['two_over_sharpness'],
          'weak_test_acc': [pick('weak_test_acc', i), pick('weak_test_acc', j)],
          'align_weak': [pick('align_weak', i), pick('align_weak', j)],
          'oscillation': [pick('oscillation', i), pick('oscillation', j)],
          'diverged_at_large': r['diverged_fraction'][j], 'all_diverge_from': r['all_diverge_from'],
          'seeds': r['seeds']}


def _assess_weak_features(m) -> claims.Assessment:
  (acc_s, acc_l), (av_s, av_l), (osc_s, osc_l) = m['weak_test_acc'], m['align_weak'], m['oscillation']
  ours = (f"weak-only test accuracy {acc_s:.2f} (eta = {m['small_lr']:g}) vs {acc_l:.2f} (eta = {m['large_lr']:g}, "
          f"2/lambda_max = {m['two_over_sharpness']:.2f}); A_v {av_s:.2f} vs {av_l:.2f}; strong-residual swing "
          f"{osc_s:.3f} vs {osc_l:.3f} (medians over the finite runs of {m['seeds']} seeds; "
          f"{m['diverged_at_large']:.0%} diverge at eta = {m['large_lr']:g}, all from eta = {m['all_diverge_from']})")
  if acc_s < 0.6 and acc_l >= 0.8 and av_l > 5 * av_s and osc_l > 5 * osc_s:
    return claims.Assessment(ours, 'agree', 'only the oscillating run learns the weak feature and classifies '
                             'weak-only data')
  if acc_l > acc_s + 0.1 and av_l > 5 * av_s and osc_l > 5 * osc_s:
    return claims.Assessment(ours, 'partly', 'only the oscillating run learns the weak feature, but its weak-only '
                             'accuracy stays below 0.8 (the memorised noise still sways it), and only in a narrow '
                             'band of learning rates just below divergence')
  return claims.Assessment(ours, 'disagree', 'the large learning rate does not learn the weak feature better')


CLAIMS = (
    claims.Claim(
        id='benign_oscillation_weak_features', experiment='benign_oscillation', title='Benign oscillation',
        paper='Lu et al. 2023', arxiv='2310.17074',
        claim='SGD with a large learning rate (oscillating) learns the weak features and classifies weak-only test '
              'data; small-learning-rate SGD learns only the strong features and fails on it',
        paper_number='qualitative (a theorem and experiments; the figures\' numbers were not retrieved)',
        measure=_weak_features, assess=_assess_weak_features),
)


def run(cfg, workdir: str) -> list[dict]:
  """Runs the sweep, writes JSON and figures, returns the headline record."""
  writer = results_lib.Writer(workdir, cfg)
  data_kw = dict(dim=cfg.dim, strong_fraction=cfg.strong_fraction, weak_norm=cfg.weak_norm,
                 strong_norm=cfg.strong_norm, noise_std=cfg.noise_std)
  out = oscillation.learning_rate_sweep(tuple(cfg.learning_rates), tuple(cfg.seeds), num_points=cfg.num_points,
                                        num_test=cfg.num_test, data_kw=data_kw, steps=cfg.steps,
                                        batch_size=cfg.batch_size, width=cfg.width, init_std=cfg.init_std,
                                        activation=cfg.activation, kind=cfg.loss, log_every=cfg.log_every)
  writer.figure(oscillation.plot_weak_test_accuracy(out), 'weak_test_accuracy.png')
  writer.figure(oscillation.plot_oscillation(out), 'oscillation.png')
  med = lambda key: [float(v) for v in oscillation.median_over_seeds(out[key])]
  all_diverge = [float(lr) for lr, d in zip(out['learning_rates'], out['diverged'].all(axis=0)) if d]
  headline = [{'learning_rates': [float(v) for v in out['learning_rates']], 'seeds': len(cfg.seeds),
               'small_lr': cfg.small_lr, 'large_lr': cfg.large_lr,
               'two_over_sharpness': float(2.0 / np.median(out['sharpness'])),
               'weak_test_acc': med('weak_test_acc'), 'align_weak': med('align_weak'),
               'align_strong': med('align_strong'), 'oscillation': med('oscillation'), 'final_loss': med('final_loss'),
               'diverged_fraction': [float(v) for v in out['diverged'].mean(axis=0)],
               'all_diverge_from': all_diverge[0] if all_diverge else None}]
  writer.results(out)
  writer.metrics(headline)
  return headline
