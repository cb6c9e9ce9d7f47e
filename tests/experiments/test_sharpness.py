"""experiments/sharpness.py: a shrunken smoke preset runs every method through the entry point's runner, writes its
files, counts SAM's two gradients a step, and its claim can be measured and assessed."""

import json
import os

import pytest

from experiments.configs import sharpness as sharpness_config
from experiments.lib import sharpness
from experiments.lib.common import script


@pytest.mark.slow  # SAF and MESA run end to end in colab/optimizers, executed by default
def test_smoke_preset_writes_its_files_and_measures_its_claim(tmp_path, capsys):
  config = sharpness_config.get_config('smoke')
  config.update(dict(epochs=3, start_epoch=1, hidden=(8,), eval_examples=32, power_iters=3))
  outputs = script.run(sharpness, config, str(tmp_path))
  for file in ('config.json', 'metrics.jsonl', 'results.json', 'sharpness.png'):
    assert os.path.getsize(tmp_path / file) > 0, file
  rows = [json.loads(line) for line in open(tmp_path / 'metrics.jsonl')]
  assert [r['method'] for r in rows] == list(config.methods)
  assert {r['method']: r['gradients_per_step'] for r in rows} == {'sgd': 1, 'saf': 1, 'mesa': 1, 'sam': 2}
  assert all(r['top_eigenvalue'] > 0 and 0 <= r['test_accuracy'] <= 1 for r in rows)
  assert 'lambda_max' in capsys.readouterr().out
  for claim in sharpness.CLAIMS:
    assert claim.assess(claim.measure(outputs)).verdict in ('agree', 'partly', 'disagree')
