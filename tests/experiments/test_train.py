"""The training script and the main job: exact resume (at a checkpoint, between two, after a Ctrl-C during an
asynchronous save), a finished workdir left alone, real MNIST files, one-line command-line errors, the main job's
command line."""

import json
import os
import subprocess
import sys

import numpy as np
import orbax.checkpoint as ocp
import pytest

from experiments.configs import compare as compare_config
from experiments.configs import train as train_config
from experiments.lib import compare
from experiments.lib import train as trainer
from experiments.lib.common import models, script, training, usage

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


def test_ctrl_c_during_an_async_checkpoint_leaves_a_resumable_workdir(tmp_path, monkeypatch, capsys):
  whole = trainer.run(_config('adam', steps=20), str(tmp_path / 'whole'))
  save = ocp.CheckpointManager.save

  def interrupted_save(self, step, *args, **kwargs):
    started = save(self, step, *args, **kwargs)  # the asynchronous write of step 10 is in flight
    if step == 10:
      raise KeyboardInterrupt
    return started

  monkeypatch.setattr(ocp.CheckpointManager, 'save', interrupted_save)
  with pytest.raises(KeyboardInterrupt):
    trainer.run(_config('adam', steps=20), str(tmp_path / 'stopped'))
  monkeypatch.setattr(ocp.CheckpointManager, 'save', save)
  assert 'rerun with the same --workdir to resume' in capsys.readouterr().out
  # A save killed before its commit leaves a temporary directory, which a resume must skip.
  (tmp_path / 'stopped' / 'checkpoints' / '15.orbax-checkpoint-tmp' / 'default').mkdir(parents=True)
  resumed = trainer.run(_config('adam', steps=20), str(tmp_path / 'stopped'))
  assert 'resumed from step 10' in capsys.readouterr().out  # the save in flight finished before the exit
  assert trainer.params_equal(whole['params'], resumed['params'])
  read = lambda d: [json.loads(l) for l in open(tmp_path / d / 'metrics.jsonl')]
  assert read('stopped') == read('whole')  # no row twice, the losses bit-identical

  # Rerunning the finished workdir says so, evaluates nothing and leaves its files as they are.
  monkeypatch.setattr(training, 'accuracy', lambda *a, **k: pytest.fail('a finished run was evaluated again'))
  again = trainer.run(_config('adam', steps=20), str(tmp_path / 'stopped'))
  assert 'already finished at step 20' in capsys.readouterr().out
  assert again['test_accuracy'] == whole['test_accuracy'] and read('stopped') == read('whole')
  assert trainer.params_equal(whole['params'], again['params'])


def test_a_300_step_run_prints_under_15_lines(tmp_path, capsys):
  c = train_config.get_config('adam')
  c.steps = 300
  script.run(trainer, c, str(tmp_path))
  lines = capsys.readouterr().out.strip().splitlines()
  assert len(lines) < 15 and lines[0].startswith('[adam] 50/300  loss') and 'left' in lines[0], lines
  assert 'train loss' in lines[-3] and '(full batch)' in lines[-3]


def test_full_loss_is_the_mean_over_every_example():
  ds = training.make_problem(seed=0)
  x, y = ds.dataset.x_train[:50], ds.dataset.y_train[:50]  # chunks of 7: the last one is short
  expected = float(models.cross_entropy(ds.model.apply(ds.params, x), y))
  assert training.full_loss(ds.model, ds.params, x, y, batch=7) == pytest.approx(expected, rel=1e-5)


def test_misspelt_hyperparameter_is_one_line_with_the_nearest_names(tmp_path):
  c = _config('momentum')
  c.optimizer.moomentum = 0.9
  with pytest.raises(usage.UsageError, match="unknown hyperparameter of momentum 'moomentum'; nearest: momentum"):
    trainer.run(c, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()
  c = _config('adam', steps=5, log_every=5)  # a factory argument the registry does not list is accepted
  c.optimizer.b1 = 0.5
  assert trainer.run(c, str(tmp_path / 'b1'))['step'] == 5


@pytest.mark.parametrize('argv, message', [
    (['--config.stepz=3'], "unknown --config field 'stepz'; nearest: steps"),
    (['--config=experiments/configs/train.py:momentum', '--config.optimizer.moomentum=0.5'],
     "unknown --config field 'optimizer.moomentum'; nearest: optimizer.momentum"),
])
def test_unknown_config_field_is_one_line(argv, message, monkeypatch, capsys):
  monkeypatch.chdir(ROOT)
  monkeypatch.setattr('sys.argv', ['experiments/train.py', *argv])
  with pytest.raises(SystemExit) as stop:
    script.config_flag('train')  # fails before defining the flag, while ml_collections would raise
  assert stop.value.code == 2
  assert capsys.readouterr().err.strip().splitlines() == [f'error: {message}']


def test_missing_data_dir_fails_before_the_workdir_is_written(tmp_path):
  missing = str(tmp_path / 'no-such-dir')
  with pytest.raises(usage.UsageError, match='no-such-dir'):
    trainer.run(_config('adam', data_dir=missing), str(tmp_path / 'train'))
  c = compare_config.get_config('smoke')
  c.optimizers, c.data_dir = 'sgd', missing
  with pytest.raises(usage.UsageError, match='no-such-dir'):
    compare.run(c, str(tmp_path / 'compare'))
  with pytest.raises(usage.UsageError, match='no-such-dir'):
    script.run(compare, c, str(tmp_path / 'script'))
  assert not any((tmp_path / d).exists() for d in ('train', 'compare', 'script'))


def test_main_job_checks_every_name_before_training_any(tmp_path, monkeypatch):
  monkeypatch.setattr(compare, 'run_one', lambda *a: pytest.fail('trained before checking the names'))
  c = compare_config.get_config('smoke')
  c.optimizers = 'adam,sgd,adma'
  with pytest.raises(usage.UsageError, match="unknown optimizer 'adma'; nearest: adam"):
    compare.run(c, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()


def test_main_job_skips_slow_optimizers_unless_named():
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
  assert 'compare 2/2' in out.stdout  # the progress line
  assert 'backend' not in out.stderr and not [l for l in out.stderr.splitlines() if l.startswith('I')]  # quiet
  rows = [json.loads(l) for l in open(tmp_path / 'metrics.jsonl')]
  assert [r['optimizer'] for r in rows] == ['sgd', 'adam']
  assert rows[0]['state_bytes_per_param_byte'] == 0 and rows[1]['state_bytes_per_param_byte'] > 1.99
  assert all(np.isfinite(r['train_loss']) for r in rows)
  assert (tmp_path / 'curves.png').stat().st_size > 1000
