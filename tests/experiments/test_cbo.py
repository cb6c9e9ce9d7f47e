"""experiments/cbo.py: the smoke preset (shrunk further) runs through the entry point's runner, writes its files,
and both claims can be measured and assessed from its records."""

import json
import os

import pytest

from experiments.configs import cbo as cbo_config
from experiments.lib import cbo
from experiments.lib.common import script


@pytest.mark.slow  # CBO runs end to end in colab/optimizers, which the default suite executes
def test_smoke_preset_writes_its_files_and_measures_its_claims(tmp_path, capsys):
  config = cbo_config.get_config('smoke')
  config.update(dict(noises=('anisotropic',), runs=2, particles=8, steps=10, align_points=4, align_particles=8,
                     align_num_alpha=2))
  headline = script.run(cbo, config, str(tmp_path))
  for file in ('config.json', 'metrics.jsonl', 'results.json', 'alignment.png'):
    assert os.path.getsize(tmp_path / file) > 0, file
  assert json.load(open(tmp_path / 'config.json'))['record'] is False
  assert capsys.readouterr().out.startswith('{')
  for claim in cbo.CLAIMS:
    assert claim.assess(claim.measure(headline)).verdict in ('agree', 'partly', 'disagree')
