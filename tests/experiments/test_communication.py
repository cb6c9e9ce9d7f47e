"""experiments/communication: the dispatcher, the config presets, and tiny runs that write their files."""

import json
import os

import pytest

from experiments.configs import communication as cfg
from experiments.lib import communication


def test_config_has_every_available_experiment_for_every_preset():
  for preset in ('', 'medium', 'smoke'):
    c = cfg.get_config(preset)
    assert set(communication.EXPERIMENTS) == {'ef21', 'dgc', 'compressors', 'diloco'}
    for name in communication.EXPERIMENTS:
      assert name in c
  with pytest.raises(ValueError, match='unknown experiment'):
    communication.module('nope')
  with pytest.raises(ValueError, match='unknown preset'):
    cfg.get_config('huge')


def test_ef21_and_dgc_tiny_runs_write_metrics(tmp_path):
  c = cfg.get_config('smoke')
  c.experiment = 'ef21'
  c.ef21.update(steps=60, log_every=20, spreads='3', num_workers=4, methods='ef21,ef21_w', synthetic_rows=400)
  out = communication.run(c, str(tmp_path / 'ef21'))
  rows, text = out['rows'], communication.table(out)
  assert rows[0]['L_max/L_min'] > 1 and 'EF21-W gain' in text
  lines = open(tmp_path / 'ef21' / 'metrics.jsonl').read().splitlines()
  assert len(lines) == 2 * 3 and json.loads(lines[-1])['method'] == 'ef21_w'
  c.experiment = 'dgc'
  c.dgc.update(epochs=2, eval_every_epochs=2, warmup_epochs=1, methods='dense,dgc', num_workers=4, hidden=32)
  dense, sparse = communication.run(c, str(tmp_path / 'dgc'))['rows']
  assert dense['compression_ratio'] == pytest.approx(1.0) and sparse['steady_state_ratio'] > 20
  assert os.path.exists(tmp_path / 'dgc' / 'accuracy_vs_bytes.png')
  assert json.load(open(tmp_path / 'dgc' / 'config.json'))['experiment'] == 'dgc'


def test_compressors_tiny_run(tmp_path):
  c = cfg.get_config('smoke')
  c.experiment = 'compressors'
  c.compressors.update(warm_steps=1, draws=1, hidden=16, specs='identity; top_k ratio=0.01; int8')
  out = communication.run(c, str(tmp_path))
  identity, top_k, int8 = out['rows']
  assert identity['ratio'] == pytest.approx(1.0) and identity['relative_error'] == 0
  assert top_k['ratio'] > 20 and 3.5 < int8['ratio'] <= 4
  assert 'top_k' in communication.table(out) and os.path.getsize(tmp_path / 'ratio_vs_error.png') > 0
