"""experiments/asynchronous: the dispatcher, the config presets, and tiny runs of each sub-experiment."""

import json
import os

import numpy as np
import pytest

from experiments.configs import asynchronous as cfg
from experiments.lib import asynchronous


def test_config_has_every_experiment_for_every_preset():
  for preset in ('', 'smoke'):
    c = cfg.get_config(preset)
    assert set(asynchronous.EXPERIMENTS) == {'async_fl', 'gradient_coding', 'fzoos', 'sketching'}
    for name in asynchronous.EXPERIMENTS:
      assert name in c
  with pytest.raises(ValueError, match='unknown experiment'):
    asynchronous.module('nope')
  with pytest.raises(ValueError, match='unknown preset'):
    cfg.get_config('huge')
  assert {c.id for c in asynchronous.CLAIMS} == {'async_fl_speed_bias', 'fedfix_wallclock', 'sgc_runtime_gain',
                                                 'fzoos_query_efficiency', 'sketching_leakage'}


def test_async_fl_tiny_run(tmp_path):
  c = cfg.get_config('smoke')
  c.async_fl.update(total_time=2.0, optimum_steps=5, local_steps=2, eval_every=0.5, methods='sync,async_weight')
  out = asynchronous.run(c, str(tmp_path))
  rows = {r['method']: r for r in out['rows']}
  assert set(rows) == {'sync', 'async_weight'}
  assert all(np.isfinite(r['F_minus_F_star']) for r in rows.values())
  assert rows['async_weight']['steps'] > rows['sync']['steps']   # async steps at every arrival
  assert 'async_weight' in asynchronous.table(out)
  assert json.load(open(tmp_path / 'config.json'))['experiment'] == 'async_fl'


def test_gradient_coding_tiny_run(tmp_path):
  c = cfg.get_config('smoke')
  c.experiment = 'gradient_coding'
  c.gradient_coding.update(jobs=8, regimes='iid:0.05:0.0')
  out = asynchronous.run(c, str(tmp_path))
  (row,) = out['rows']
  assert row['max_decode_error'] < 1e-9 and row['uncoded'] >= row['ignore']
  assert 'M-SGC' in asynchronous.table(out) and os.path.getsize(tmp_path / 'results.json') > 0


def test_fzoos_tiny_run(tmp_path):
  c = cfg.get_config('smoke')
  c.experiment = 'fzoos'
  c.fzoos.update(rounds=1, local_steps=2, methods='fzoos,fedzo')
  out = asynchronous.run(c, str(tmp_path))
  rows = {r['method']: r for r in out['rows']}
  assert set(rows) == {'fzoos', 'fedzo'} and all(np.isfinite(r['final_gap']) for r in rows.values())
  assert rows['fedzo']['total_queries'] == 2 * 2 * c.fzoos.q * c.fzoos.num_clients   # 2q queries per step
  assert 'fzoos' in asynchronous.table(out)


def test_sketching_tiny_run(tmp_path):
  c = cfg.get_config('smoke')
  c.experiment = 'sketching'
  c.sketching.update(rounds=2, sigmas='0.0', attack_examples=1)
  out = asynchronous.run(c, str(tmp_path))
  train = [r for r in out['rows'] if r['part'] == 'train']
  (attack,) = [r for r in out['rows'] if r['part'] == 'attack']
  assert train[1]['bytes_per_client'] < train[0]['bytes_per_client'] / 4   # b/d = 0.2 plus the key
  assert attack['recovered'] == 1.0 and 'inversion' in asynchronous.table(out)
