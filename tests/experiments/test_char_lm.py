"""The character-LM comparison: runs on tiny Shakespeare, writes its outputs, picks optimizers from the config."""

import json
import os

import pytest

from experiments.configs import char_lm as char_lm_config
from experiments.lib import char_lm


def test_smoke_run_on_tiny_shakespeare(tmp_path, shared_data):
  c = char_lm_config.get_config('smoke')
  c.optimizers = 'swan,adamw'
  c.data_dir = os.path.join(shared_data, 'tinyshakespeare')
  rows = char_lm.run(c, str(tmp_path))
  assert [r['optimizer'] for r in rows] == ['swan', 'adamw']
  for r in rows:
    assert r['finite'] and r['val_loss'] < 4.0  # log(65) = 4.17 for a uniform guess over the 65 characters
  assert rows[0]['state_bytes_per_param_byte'] == 0.0  # SWAN is stateless
  lines = [json.loads(l) for l in open(tmp_path / 'metrics.jsonl')]
  assert [l['optimizer'] for l in lines] == ['swan', 'adamw']
  assert (tmp_path / 'curves.png').stat().st_size > 0
  assert json.load(open(tmp_path / 'config.json'))['optimizers'] == 'swan,adamw'
  assert 'swan' in char_lm.table(rows)


def test_optimizer_names():
  c = char_lm_config.get_config('smoke')
  names = char_lm.optimizer_names(c)
  assert {'swan', 'auon', 'hybrid_auon', 'frugal', 'adamw', 'muon'} <= set(names)
  c.optimizers = 'adamw, muon'
  assert char_lm.optimizer_names(c) == ['adamw', 'muon']
  c.optimizers = 'adamw,no_such_optimizer'
  with pytest.raises(KeyError, match='no_such_optimizer'):
    char_lm.optimizer_names(c)
