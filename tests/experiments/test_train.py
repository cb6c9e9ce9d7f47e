"""The training script: exact resume, real MNIST files, and the main job's command line."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from experiments.configs import train as train_config
from experiments.lib import trainer

ROOT = os.path.join(os.path.dirname(__file__), '..', '..')


def _config(optimizer='adam', **overrides):
  c = train_config.get_config(optimizer)
  c.steps, c.log_every, c.checkpoint_every, c.batch_size = 30, 5, 10, 32
  for k, v in overrides.items():
    setattr(c, k, v)
  return c


@pytest.mark.parametrize('optimizer', ['adam', 'momentum'])
def test_resume_is_bit_identical(tmp_path, optimizer):
  whole = trainer.train(_config(optimizer), str(tmp_path / 'whole'))
  # Stop between checkpoints (step 17, last checkpoint 17 as the final save), then rerun to the end.
  first = trainer.train(_config(optimizer, stop_after=17), str(tmp_path / 'split'))
  assert first['step'] == 17
  resumed = trainer.train(_config(optimizer), str(tmp_path / 'split'))
  assert trainer.params_equal(whole['params'], resumed['params'])
  assert not trainer.params_equal(first['params'], resumed['params'])
  rows = [json.loads(l) for l in open(tmp_path / 'split' / 'metrics.jsonl')]
  assert [r['step'] for r in rows if 'loss' in r] == [5, 10, 15, 17, 20, 25, 30]
  assert json.load(open(tmp_path / 'split' / 'config.json'))['optimizer']['name'] == optimizer


def test_trains_on_mnist_files(tmp_path, shared_data):
  result = trainer.train(_config('adam', steps=150, data_dir=os.path.join(shared_data, 'mnist'),
                                 batch_size=64), str(tmp_path))
  assert result['test_accuracy'] > 0.8  # 150 Adam steps of an MLP on 8,000 MNIST images


def test_unknown_hyperparameter_is_named(tmp_path):
  c = _config('adam')
  c.optimizer.moomentum = 0.9
  with pytest.raises(TypeError, match='moomentum'):
    trainer.train(c, str(tmp_path))


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
