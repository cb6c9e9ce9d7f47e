"""experiments/online.py: the smoke preset (shrunk further) runs through the entry point's runner, writes its
files, and both claims can be measured and assessed from its records."""

import json
import os

import pytest

from experiments.configs import online as online_config
from experiments.lib import online
from experiments.lib.common import script


@pytest.mark.slow  # optimistic OMD runs end to end in colab/optimizers, executed by default
def test_smoke_preset_writes_its_files_and_measures_its_claims(tmp_path, capsys):
  config = online_config.get_config('smoke')
  config.update(dict(cases=((0.0, 0), (1.0, 0)), horizons=(50, 100), game_rounds=100))
  headline = script.run(online, config, str(tmp_path))
  for file in ('config.json', 'metrics.jsonl', 'results.json', 'regret.png', 'game.png'):
    assert os.path.getsize(tmp_path / file) > 0, file
  assert json.load(open(tmp_path / 'config.json'))['record'] is False
  assert capsys.readouterr().out.startswith('{')
  for claim in online.CLAIMS:
    assert claim.assess(claim.measure(headline)).verdict in ('agree', 'partly', 'disagree')
