"""experiments/federated: the dispatcher, the presets, and tiny runs of the benchmark, FedStale and FedAMD
sub-experiments that write their files (the Shakespeare one on the embedded text)."""

import json
import os

import pytest

from experiments.configs import federated as cfg
from experiments.lib import federated


def test_config_has_every_experiment_for_every_preset():
  for preset in cfg.PRESETS:
    c = cfg.get_config(preset)
    for name in federated.EXPERIMENTS:
      assert name in c, name
  assert {'benchmark', 'shakespeare', 'fedstale', 'fedamd'} <= set(federated.EXPERIMENTS)
  with pytest.raises(ValueError, match='unknown experiment'):
    federated.module('nope')
  with pytest.raises(ValueError, match='unknown preset'):
    cfg.get_config('huge')
  claim_ids = {c.id for c in federated.CLAIMS}
  assert {'fedstale_beta_tradeoff', 'fedamd_partial_participation'} <= claim_ids


def test_benchmark_and_fedstale_tiny_runs_write_their_files(tmp_path):
  c = cfg.get_config('smoke')
  c.experiment = 'benchmark'
  c.benchmark.update(rounds=2, eval_every=1, num_clients=8, per_round=2, methods='fedvarp', local_steps=2)
  out = federated.run(c, str(tmp_path / 'benchmark'))
  assert [r['method'] for r in out['rows']] == ['fedvarp'] and all(r['finite'] for r in out['rows'])
  assert out['rows'][0]['bytes_total'] == 2 * 2 * 4 * (64 * 64 + 64 + 64 * 10 + 10)  # 2 rounds x 2 clients, float32
  assert 'rounds to target' in federated.table(out)
  assert json.load(open(tmp_path / 'benchmark' / 'config.json'))['experiment'] == 'benchmark'
  c.experiment = 'fedstale'
  c.fedstale.update(rounds=2, eval_every=1, num_clients=4, local_steps=1, laws='heterogeneous')
  rows = federated.run(c, str(tmp_path / 'fedstale'))['rows']
  assert [(r['law'], r['beta']) for r in rows] == [('heterogeneous', 0.0), ('heterogeneous', 1.0)]
  assert 'best beta: heterogeneous' in federated.table({'experiment': 'fedstale', 'rows': rows})
  assert os.path.exists(tmp_path / 'fedstale' / 'metrics.jsonl')
