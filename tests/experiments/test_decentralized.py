"""experiments/decentralized: the dispatcher, the config presets, and tiny runs of each sub-experiment."""

import json
import os

import pytest

from experiments.configs import decentralized as cfg
from experiments.lib import decentralized


def test_config_has_every_experiment_for_every_preset():
  for preset in cfg.PRESETS:
    c = cfg.get_config(preset)
    for name in decentralized.EXPERIMENTS:
      assert name in c
  with pytest.raises(ValueError, match='unknown experiment'):
    decentralized.module('nope')
  with pytest.raises(ValueError, match='unknown preset'):
    cfg.get_config('huge')
  for claim in decentralized.CLAIMS:  # every claim's config exists
    assert claim.config().experiment in decentralized.EXPERIMENTS


def test_disruption_tiny_run(tmp_path):
  c = cfg.get_config('smoke')
  c.experiment = 'disruption'
  c.disruption.update(num_workers=6, fail_round=1, rounds=2, eval_every=1, local_steps=1, hidden=8,
                      scenarios='data_nodes')
  (row,) = decentralized.run(c, str(tmp_path / 'disruption'))['rows']
  assert row['lost'] == 1 and len(open(tmp_path / 'disruption' / 'metrics.jsonl').read().splitlines()) == 2
  assert os.path.exists(tmp_path / 'disruption' / 'disruption.png') and 'worst_final' in decentralized.table(
      {'experiment': 'disruption', 'rows': [row]})


@pytest.mark.slow
def test_dfedsam_merging_and_variance_tiny_runs(tmp_path):
  c = cfg.get_config('smoke')
  c.experiment = 'dfedsam'
  c.dfedsam.update(num_workers=4, rounds=2, eval_every=2, local_steps=2, qs='2', hidden=8)
  rows = decentralized.run(c, str(tmp_path / 'dfedsam'))['rows']
  assert [r['method'] for r in rows] == ['dfedavg', 'dfedsam_mgs'] and rows[1]['transfers/round'] == 4
  assert os.path.exists(tmp_path / 'dfedsam' / 'dfedsam.png')
  c.experiment = 'merging'
  c.merging.update(num_workers=4, steps=6, eval_every=5, gossip_every='0', fedavg_every=3, hidden=8)
  out = decentralized.run(c, str(tmp_path / 'merging'))
  fedavg, merged = out['rows']
  assert merged['transfers'] == 1 and merged['consensus'] > 0 and 'merged_accuracy' in decentralized.table(out)
  assert json.load(open(tmp_path / 'merging' / 'config.json'))['experiment'] == 'merging'
  c.experiment = 'variance'
  c.variance.update(num_workers=4, ks='4', rounds=2, eval_every=2, early_round=2, hidden=8)
  rows = decentralized.run(c, str(tmp_path / 'variance'))['rows']
  assert rows[0]['variance_ratio'] < 0.5 and rows[0]['corrected_ratio'] == pytest.approx(1.0, abs=0.01)
