"""experiments/communication: the dispatcher, the config presets, and tiny runs that write their files."""

import json
import os

import pytest

from experiments.configs import communication as cfg
from experiments.lib import communication


def test_config_has_every_available_experiment_for_every_preset():
  for preset in ('', 'medium', 'smoke'):
    c = cfg.get_config(preset)
    assert {'ef21', 'dgc', 'compressors'} <= set(communication.available())
    for name in communication.available():
      assert name in c
  with pytest.raises(ValueError, match='unknown experiment'):
    communication.module('nope')


def test_ef21_and_dgc_tiny_runs_write_metrics(tmp_path):
  c = cfg.get_config('smoke')
  c.experiment = 'ef21'
  c.ef21.update(steps=60, log_every=20, spreads='3', num_workers=4, methods='ef21,ef21_w', synthetic_rows=400)
  rows, text = communication.run(c, str(tmp_path / 'ef21'))
  assert rows[0]['L_max/L_min'] > 1 and 'EF21-W gain' in text
  lines = open(tmp_path / 'ef21' / 'metrics.jsonl').read().splitlines()
  assert len(lines) == 2 * 3 and json.loads(lines[-1])['method'] == 'ef21_w'
  c.experiment = 'dgc'
  c.dgc.update(epochs=2, eval_every_epochs=2, warmup_epochs=1, methods='dense,dgc', num_workers=4, hidden=32)
  rows, _ = communication.run(c, str(tmp_path / 'dgc'))
  dense, sparse = rows
  assert dense['compression_ratio'] == pytest.approx(1.0) and sparse['steady_state_ratio'] > 20
  assert os.path.exists(tmp_path / 'dgc' / 'accuracy_vs_bytes.png')
