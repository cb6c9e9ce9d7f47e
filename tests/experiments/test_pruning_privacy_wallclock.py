"""The pruning, RQM-vs-PBM and EDiT wall-clock scripts: each smoke preset (shrunk further) runs through the entry
point's runner, writes its files, and its claim can be measured and assessed."""

import os

import pytest

from experiments.configs import edit_wallclock as edit_config
from experiments.configs import pruning as pruning_config
from experiments.configs import rqm as rqm_config
from experiments.lib import edit_wallclock, pruning, rqm
from experiments.lib.common import script

CASES = {
    'pruning': (pruning, pruning_config, dict(train_steps=50, sparsities=(0.8,), recomputations=1, num_grads=8,
                                              fisher_batch=8), 'pruning.png'),
    'rqm': (rqm, rqm_config, dict(), 'frontier.png'),
    'edit_wallclock': (edit_wallclock, edit_config, dict(total_time=30.0, target_loss=2.0), 'wallclock.png'),
}


@pytest.mark.parametrize('name', sorted(CASES))
def test_smoke_preset_writes_its_files_and_measures_its_claim(name, tmp_path):
  lib, config_module, shrink, figure = CASES[name]
  config = config_module.get_config('smoke')
  config.update(shrink)
  outputs = script.run(lib, config, str(tmp_path))
  for file in ('config.json', 'metrics.jsonl', 'results.json', figure):
    assert os.path.getsize(tmp_path / file) > 0, file
  claim, = lib.CLAIMS
  assert claim.assess(claim.measure(outputs)).verdict in ('agree', 'partly', 'disagree')
