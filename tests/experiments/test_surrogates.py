"""experiments/surrogates.py: a shrunken smoke preset runs SGD and SSO through the entry point's runner, writes its
files, and its claim can be measured and assessed."""

import os

from experiments.configs import surrogates as surrogates_config
from experiments.lib import surrogates
from experiments.lib.common import script


def test_smoke_preset_writes_its_files_and_measures_its_claim(tmp_path, capsys):
  config = surrogates_config.get_config('smoke')
  config.update(dict(oracle_calls=4, sgd_steps=(2.0,), inner_steps=(3,), sso_target_steps=(4.0,)))
  outputs = script.run(surrogates, config, str(tmp_path))
  for file in ('config.json', 'metrics.jsonl', 'results.json', 'surrogates.png'):
    assert os.path.getsize(tmp_path / file) > 0, file
  assert set(outputs['best']) == {'sgd', 'sso_m3'}
  assert all(len(b['losses']) == 5 and b['losses'][-1] < b['losses'][0] for b in outputs['best'].values())
  assert 'calls to SGD best' in capsys.readouterr().out
  claim, = surrogates.CLAIMS
  assert claim.assess(claim.measure(outputs)).verdict in ('agree', 'partly', 'disagree')


def test_calls_to_reach():
  assert surrogates.calls_to_reach([3.0, 2.0, 1.0, 0.5], 1.0) == 2
  assert surrogates.calls_to_reach([3.0, 2.0], 1.0) is None
