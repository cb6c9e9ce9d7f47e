"""The training script: exact resume (at a checkpoint and between two), real MNIST files, the main job's command
line."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from experiments.configs import train as train_config
from experiments.lib import train as trainer
from experiments.lib.common import training

ROOT = os.path.join(os.path.dirname(__file__), '..', '..')


def _config(optimizer='adam', **overrides):
  c = train_config.get_config(optimizer)
  c.steps, c.log_every, c.checkpoint_every, c.batch_size = 30, 5, 10, 32
  for k, v in overrides.items():
    setattr(c, k, v)
  return c


@pytest.mark.parametrize('optimizer', ['adam', 'momentum'])
def test_resume_is_bit_identical(tmp_path, optimizer):
  whole = trainer.run(_config(optimizer), str(tmp_path / 'whole'))
  # Stop between checkpoints (step 17, last checkpoint 17 as the final save), then rerun to the end.
  first = trainer.run(_config(optimizer, stop_after=17), str(tmp_path / 'split'))
  assert first['step'] == 17
  resumed = trainer.run(_config(optimizer), str(tmp_path / 'split'))
  assert trainer.params_equal(whole['params'], resumed['params'])
  assert not trainer.params_equal(first['params'], resumed['params'])
  rows = [json.loads(l) for l in open(tmp_path / 'split' / 'metrics.jsonl')]
  assert [r['step'] for r in rows if 'loss' in r] == [5, 10, 15, 17, 20, 25, 30]
  assert json.load(open(tmp_path / 'split' / 'config.json'))['optimizer']['name'] == optimizer


class Crash(Exception):
  pass


def test_crash_between_checkpoints_replays_steps_bit_identically(tmp_path, monkeypatch, capsys):
  whole = trainer.run(_config('adam'), str(tmp_path / 'whole'))
  make_step = training.make_step

  def crashing_make_step(*args, **kwargs):
    step, calls = make_step(*args, **kwargs), [0]

    def crashing(*a):
      calls[0] += 1
      if calls[0] == 18:  # steps 1..17 done; the last checkpoint is step 10, the last logged row step 15
        raise Crash
      return step(*a)
    return crashing

  monkeypatch.setattr(training, 'make_step', crashing_make_step)
  with pytest.raises(Crash):
    trainer.run(_config('adam'), str(tmp_path / 'crashed'))
  monkeypatch.setattr(training, 'make_step', make_step)
  capsys.readouterr()
  resumed = trainer.run(_config('adam'), str(tmp_path / 'crashed'))
  assert 'resumed from step 10' in capsys.readouterr().out  # and replays steps 11..17
  assert trainer.params_equal(whole['params'], resumed['params'])
  assert resumed['test_accuracy'] == whole['test_accuracy']
  read = lambda d: [json.loads(l) for l in open(tmp_path / d / 'metrics.jsonl')]
  assert read('crashed') == read('whole')  # no row logged twice, losses bit-identical


def test_trains_on_mnist_files(tmp_path, shared_data):
  result = trainer.run(_config('adam', steps=150, data_dir=os.path.join(shared_data, 'mnist'),
                                 batch_size=64), str(tmp_path))
  assert result['test_accuracy'] > 0.8  # 150 Adam steps of an MLP on 8,000 MNIST images


def test_unknown_hyperparameter_is_named(tmp_path):
  c = _config('adam')
  c.optimizer.moomentum = 0.9
  with pytest.raises(TypeError, match='moomentum'):
    trainer.run(c, str(tmp_path))


def test_main_job_skips_slow_optimizers_unless_named():
  from experiments.configs import compare as compare_config
  from experiments.lib import compare
  c = compare_config.get_config()
  names = compare.optimizer_names(c)
  assert 'muon' not in names and 'adam' in names  # muon is registered with the tag 'slow'
  c.optimizers = 'adam,muon'
  assert compare.optimizer_names(c) == ['adam', 'muon']


def test_main_job_command_line(tmp_path):
  cmd = [sys.executable, '-m', 'experiments.compare', '--config=experiments/configs/compare.py:smoke',
         '--config.optimizers=sgd,adam', f'--workdir={tmp_path}']
  out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={**os.environ, 'XLA_FLAGS': ''})
  assert out.returncode == 0, out.stderr[-2000:]
  assert 'state/param' in out.stdout
  rows = [json.loads(l) for l in open(tmp_path / 'metrics.jsonl')]
  assert [r['optimizer'] for r in rows] == ['sgd', 'adam']
  assert rows[0]['state_bytes_per_param_byte'] == 0 and rows[1]['state_bytes_per_param_byte'] > 1.99
  assert all(np.isfinite(r['train_loss']) for r in rows)
  assert (tmp_path / 'curves.png').stat().st_size > 1000
