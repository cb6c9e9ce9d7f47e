"""DP-SGD as a training mode of the training script: the accountant's epsilon in every metrics row, on every
progress line and in the table; no noise and no clip is the plain optimizer; bad privacy settings are one line."""

import json

import jax
import numpy as np
import pytest

from experiments.configs import train as train_config
from experiments.lib import train as trainer
from experiments.lib.common import data as data_lib
from experiments.lib.common import dp_training, script, usage
from optim import privacy


def _config(**settings):
  c = train_config.get_config('adam')
  c.steps, c.log_every, c.checkpoint_every, c.batch_size = 12, 4, 12, 32
  for k, v in settings.items():
    setattr(c.privacy, k, v)
  return c


def _rows(workdir):
  return [json.loads(line) for line in open(workdir / 'metrics.jsonl')]


def test_every_row_reports_the_accountants_epsilon(tmp_path, capsys):
  c = _config(noise_multiplier=1.1, l2_norm_clip=1.0, delta=1e-5, sampling='poisson')
  result = script.run(trainer, c, str(tmp_path))
  rows = _rows(tmp_path)
  eps = [r['epsilon'] for r in rows]
  assert len(rows) == 4 and np.all(np.isfinite(eps))  # steps 4, 8, 12 and the final evaluation
  assert np.all(np.diff(eps[:3]) > 0) and eps[3] == eps[2]  # spent grows with every step, not with evaluation
  q = c.batch_size / len(data_lib.load_images(None, 0).x_train)
  expected = privacy.epsilon(1.1, q, 12, 1e-5, sampling='poisson')
  assert result['epsilon'] == eps[-1] == pytest.approx(expected, rel=1e-12)
  assert eps[0] == pytest.approx(privacy.epsilon(1.1, q, 4, 1e-5), rel=1e-12)
  lines = capsys.readouterr().out.splitlines()
  assert [l.split('  ')[2] for l in lines if l.startswith('[adam]')] == [f'epsilon {e:.4g}' for e in eps[:3]]
  assert f'epsilon {expected:.4g} at delta 1e-05' in trainer.table(result)


def test_shuffled_batches_use_the_shuffle_accountant_and_resume_exactly(tmp_path):
  c = _config(noise_multiplier=1.1, sampling='shuffle')
  whole = trainer.run(c, str(tmp_path / 'whole'))
  c.stop_after = 6
  trainer.run(c, str(tmp_path / 'split'))
  c.stop_after = -1
  resumed = trainer.run(c, str(tmp_path / 'split'))  # the noise key and step count come back from the checkpoint
  assert trainer.params_equal(whole['params'], resumed['params'])
  assert [r for r in _rows(tmp_path / 'split') if r['step'] != 6] == _rows(tmp_path / 'whole')  # 6: the stop row
  q = c.batch_size / len(data_lib.load_images(None, 0).x_train)
  assert whole['epsilon'] == privacy.epsilon(1.1, q, 12, 1e-5, sampling='shuffle')


def test_no_noise_and_no_clip_is_the_plain_optimizer(tmp_path, monkeypatch):
  plain = trainer.run(_config(), str(tmp_path / 'plain'))
  # The same batches as the non-private run: then only the aggregation differs (mean of per-example gradients).
  monkeypatch.setattr(dp_training, 'batch',
                      lambda config, n, t: (data_lib.batch_indices(n, config.batch_size, t, config.seed), None))
  private = trainer.run(_config(noise_multiplier=0.0, l2_norm_clip=float('inf')), str(tmp_path / 'dp'))
  plain_rows, private_rows = _rows(tmp_path / 'plain'), _rows(tmp_path / 'dp')
  assert 'epsilon' not in plain and private['epsilon'] == float('inf')
  assert all(r['epsilon'] is None for r in private_rows)  # inf, which strict JSON writes as null
  for a, b in zip(plain_rows, private_rows, strict=True):
    for k in ('loss', 'train_loss'):
      if k in a:
        assert b[k] == pytest.approx(a[k], rel=1e-5), (k, a['step'])
  for a, b in zip(jax.tree.leaves(plain['params']), jax.tree.leaves(private['params'])):
    np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize('settings, message', [
    ({'sampling': 'poison'}, "unknown privacy sampling 'poison'; nearest: poisson"),
    ({'accountant': 'prv'}, "unknown privacy accountant 'prv'"),
    ({'delta': 2.0}, r'privacy.delta must be in \(0, 1\), got 2.0'),
    ({'l2_norm_clip': float('inf')}, 'privacy: dp_sgd_aggregate: noise_multiplier > 0 needs a finite l2_norm_clip'),
    ({'l2_norm_clip': -1.0}, 'privacy: .*l2_norm_clip'),
])
def test_a_bad_privacy_setting_is_one_line_before_anything_is_written(tmp_path, settings, message):
  c = _config(noise_multiplier=1.0, **settings)
  with pytest.raises(usage.UsageError, match=message) as error:
    script.run(trainer, c, str(tmp_path / 'run'))
  assert '\n' not in str(error.value) and not (tmp_path / 'run').exists()


def test_an_optimizer_that_reads_the_batch_beyond_its_gradient_is_refused(tmp_path):
  c = train_config.get_config('sophia_g')  # its Gauss-Newton oracle would see the batch without noise
  c.privacy.noise_multiplier = 1.0
  with pytest.raises(usage.UsageError, match='privacy: sophia_g reads the batch beyond its gradient'):
    trainer.run(c, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()
