"""experiments/privacy.py: the audits and the limits at toy sizes (fast), and the whole run at the smoke preset
(marked slow: two training compilations of per-example DP-SGD and DiceSGD take ~25 s of XLA time on a CPU)."""

import json
import os

import numpy as np
import pytest

from experiments.configs import privacy as privacy_config
from experiments.lib import privacy


@pytest.mark.slow
def test_smoke_run_writes_everything_and_the_claims_measure(tmp_path):
  c = privacy_config.get_config('smoke')
  c.steps, c.white_box_models, c.white_box_steps, c.floor_steps = 5, 200, 3, (100,)
  out = privacy.run(c, str(tmp_path))
  for name in ('config.json', 'results.json', 'metrics.jsonl', 'accuracy.png', 'audit.png', 'tradeoff.png',
               'noise_floor.png'):
    assert os.path.getsize(tmp_path / name) > 0
  rows = [json.loads(line) for line in open(tmp_path / 'metrics.jsonl')]
  assert [r['epsilon'] for r in rows if r['name'] == 'accuracy'] == list(c.epsilons)
  util = out['results']['utility']
  assert np.asarray(util['dpsgd']).shape == (len(c.epsilons), c.seeds)
  assert all(0 <= a <= 1 for a in np.ravel(util['dicesgd']))
  # The accountant's eps at the calibrated sigma is the requested one (the calibration goes through dp_accounting).
  assert util['noise_multipliers'][0] > util['noise_multipliers'][-1] > 0
  for part in out['results']['audit'].values():
    for r in part.values():
      lo, hi = r['bayes_interval']
      assert r['bayes_lower_95'] >= lo  # the one-sided 95% end (5% quantile) is above the two-sided one (2.5%)
      assert lo <= hi and sum(r['counts']) == r['trials']
  white = out['results']['audit']['white_box']
  assert white['full_batch']['bayes_lower_95'] <= white['full_batch']['accountant_epsilon']
  for claim in privacy.CLAIMS:
    assessment = claim.assess(claim.measure(out))
    assert assessment.verdict in ('agree', 'partly', 'disagree') and assessment.ours


def test_white_box_and_synthetic_audits_and_the_noise_floor():
  c = privacy_config.get_config('smoke')
  c.white_box_models, c.white_box_steps = 400, 3
  white = privacy.white_box_audit(c)
  for name in ('full_batch', 'poisson'):
    assert 0 < white[name]['bayes_lower_95'] <= white[name]['accountant_epsilon']
  assert white['non_private']['bayes_lower_95'] > 3  # perfect separation at 200 + 200 counted trials
  synthetic = privacy.synthetic_audit(c)['n=100']
  assert synthetic['width_ratio'] < 1  # the Bayesian interval is the narrower one
  util = {'epsilons': [8.0], 'noise_multipliers': [1.0], 'sampling_rate': 0.05, 'steps': 10}
  lim = privacy.limits(c, util)
  assert all(r['bound_holds_below_floor'] and r['max_test_crossing_sigma'] >= r['sigma_min'] for r in lim['floor'])
  out = {'results': {'audit': {'white_box': white, 'black_box': {}, 'synthetic': privacy.synthetic_audit(c)},
                     'limits': lim}}
  for claim in privacy.CLAIMS[1:]:
    assert claim.assess(claim.measure(out)).verdict in ('agree', 'partly', 'disagree')
