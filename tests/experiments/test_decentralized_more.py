"""experiments/decentralized: tiny runs of the SRRW, DIMAT, Bristle and SybilWall sub-experiments."""

import os

import pytest

from experiments.configs import decentralized as cfg
from experiments.lib import decentralized


def test_srrw_tiny_run(tmp_path):
  c = cfg.get_config('smoke')
  c.experiment = 'srrw'
  c.srrw.update(num_workers=6, p=0.5, steps=40, replicas=2, alphas='0,2')
  rows = decentralized.run(c, str(tmp_path / 'srrw'))['rows']
  assert [r['alpha'] for r in rows] == [0.0, 2.0] and rows[0]['ratio_to_base'] == 1.0
  assert os.path.exists(tmp_path / 'srrw' / 'srrw.png')


@pytest.mark.slow
def test_dimat_tiny_run(tmp_path):
  c = cfg.get_config('smoke')
  c.experiment = 'dimat'
  c.dimat.update(num_workers=3, pretrain_steps=2, rounds=1, local_steps=1, hidden=8, match_batch=20)
  out = decentralized.run(c, str(tmp_path / 'dimat'))
  assert [(r['init'], r['merge']) for r in out['rows']] == [('independent', 'dimat'), ('independent', 'plain')]
  assert 'merge_1' in decentralized.table(out)


@pytest.mark.slow
def test_bristle_and_sybilwall_tiny_runs(tmp_path):
  c = cfg.get_config('smoke')
  c.experiment = 'bristle'
  c.bristle.update(rounds=1, local_steps=1, features=16)
  (row,) = decentralized.run(c, str(tmp_path / 'bristle'))['rows']
  assert row['attack'] == 'sign_flipping' and set(row) == {'attack', 'mean', 'bristle'}
  c.experiment = 'sybilwall'
  c.sybilwall.update(honest=6, rounds=1, local_steps=1)
  rows = decentralized.run(c, str(tmp_path / 'sybilwall'))['rows']
  assert [r['defence'] for r in rows] == ['plain', 'foolsgold p=0', 'sybilwall p=0.3']
