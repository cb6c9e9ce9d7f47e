"""The theory experiments' scripts: each smoke preset (shrunk a little further) runs through the entry point's
runner, writes config.json, metrics.jsonl, results.json and its figures, and its claim can be measured."""

import json
import os

import pytest

from experiments.configs import hessian_spectrum as hessian_config
from experiments.configs import langevin_averaging as langevin_config
from experiments.configs import sgn as sgn_config
from experiments.configs import stability as stability_config
from experiments.lib import hessian_spectrum, langevin_averaging, sgn, stability
from experiments.lib.common import script

CASES = {
    'sgn': (sgn, sgn_config, dict(markov_seeds=2, markov_steps=300, phase_steps=50), 'markov.png'),
    'stability': (stability, stability_config, dict(diag_steps=500, relu_steps=1000, num_chains=256),
                  'stability_heatmap.png'),
    'hessian_spectrum': (hessian_spectrum, hessian_config,
                         dict(steps=60, classes=(2,), widths=(4,), slq_steps=(4,), slq_probes=(1,), batch_sizes=(8,),
                              real_points=100), 'spectrum.png'),
    'langevin_averaging': (langevin_averaging, langevin_config, dict(time_scale=2.0, oracle_seeds=1),
                           'collapse_tensor_k3.png'),
}


@pytest.mark.parametrize('name', sorted(CASES))
def test_smoke_preset_writes_its_files_and_measures_its_claim(name, tmp_path, capsys):
  lib, config_module, shrink, figure = CASES[name]
  config = config_module.get_config('smoke')
  config.update(shrink)
  headline = script.run(lib, config, str(tmp_path))
  for file in ('config.json', 'metrics.jsonl', 'results.json', figure):
    assert os.path.getsize(tmp_path / file) > 0, file
  assert len(open(tmp_path / 'metrics.jsonl').read().splitlines()) == len(headline)
  assert json.load(open(tmp_path / 'config.json'))['record'] is False
  assert capsys.readouterr().out.startswith('{')  # the headline records, one JSON object a line
  claim, = lib.CLAIMS
  assert claim.assess(claim.measure(headline)).verdict in ('agree', 'partly', 'disagree')
