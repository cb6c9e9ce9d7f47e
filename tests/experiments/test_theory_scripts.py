"""The theory experiments' scripts: each smoke preset (shrunk a little further) runs through the entry point's
runner, writes config.json, metrics.jsonl, results.json and its figures, and its claims can be measured."""

import json
import os

import pytest

from experiments.configs import batch_size_lr as batch_size_lr_config
from experiments.configs import benign_oscillation as oscillation_config
from experiments.configs import convex_relu as convex_relu_config
from experiments.configs import directional_sharpness as sharpness_config
from experiments.configs import gradient_coherence as coherence_config
from experiments.configs import hessian_spectrum as hessian_config
from experiments.configs import langevin_averaging as langevin_config
from experiments.configs import last_iterate as last_iterate_config
from experiments.configs import sgd_noise as sgd_noise_config
from experiments.configs import sgn as sgn_config
from experiments.configs import stability as stability_config
from experiments.configs import tensor_kernels as tensor_kernels_config
from experiments.lib import (batch_size_lr, benign_oscillation, convex_relu, directional_sharpness, gradient_coherence,
                             hessian_spectrum, langevin_averaging, last_iterate, sgd_noise, sgn, stability,
                             tensor_kernels)
from experiments.lib.common import claims as claims_lib
from experiments.lib.common import script

# name: (library, config module, smoke preset shrunk further (dotted keys), a figure it writes)
CASES = {
    'sgn': (sgn, sgn_config, dict(markov_seeds=2, markov_steps=300, phase_steps=50), 'markov.png'),
    'stability': (stability, stability_config, dict(diag_steps=500, relu_steps=1000, num_chains=256),
                  'stability_heatmap.png'),
    'hessian_spectrum': (hessian_spectrum, hessian_config,
                         dict(steps=60, classes=(2,), widths=(4,), slq_steps=(4,), slq_probes=(1,), batch_sizes=(8,),
                              real_points=100), 'spectrum.png'),
    'langevin_averaging': (langevin_averaging, langevin_config, dict(time_scale=2.0, oracle_seeds=1),
                           'collapse_tensor_k3.png'),
    'gradient_coherence': (gradient_coherence, coherence_config, {}, 'suppression.png'),
    'benign_oscillation': (benign_oscillation, oscillation_config, {}, 'weak_test_accuracy.png'),
    'directional_sharpness': (directional_sharpness, sharpness_config, {}, 'sharpness.png'),
    'last_iterate': (last_iterate, last_iterate_config,
                     dict(t_max=200, num_seeds=4, cases=('heavy_tailed_composite',)), 'rates.png'),
    'convex_relu': (convex_relu, convex_relu_config, dict(admm_iterations=50, gd_steps=50, adv_test=10),
                    'convergence.png'),
    'batch_size_lr': (batch_size_lr, batch_size_lr_config, dict(steps=30), 'lr_scaling.png'),
    'tensor_kernels': (tensor_kernels, tensor_kernels_config, dict(widths=(8, 16), seeds=1, rmt_sizes=(30, 60)),
                       'width_sweep.png'),
    'sgd_noise': (sgd_noise, sgd_noise_config,
                  {'max_steps': 500, 'num_test': 50, 'phase_size': 32, 'tc_sizes': (32,), 'perceptron.sizes': (16,),
                   'perceptron.temperatures': (0.1, 10.0)}, 'phase_diagram.png'),
}


# The slower smoke runs are skipped by default (`-m slow` runs them): each family's computation is tested against its
# oracle in tests/theory/ and runs end to end in colab/theory_tour*.ipynb, which the default suite executes.
SLOW = {'hessian_spectrum', 'langevin_averaging', 'directional_sharpness', 'stability', 'gradient_coherence', 'sgn',
        'sgd_noise', 'benign_oscillation'}


@pytest.mark.parametrize('name', [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in sorted(CASES)])
def test_smoke_preset_writes_its_files_and_measures_its_claims(name, tmp_path, capsys):
  lib, config_module, shrink, figure = CASES[name]
  config = config_module.get_config('smoke')
  config.update_from_flattened_dict(shrink)
  headline = script.run(lib, config, str(tmp_path))
  for file in ('config.json', 'metrics.jsonl', 'results.json', figure):
    assert os.path.getsize(tmp_path / file) > 0, file
  assert len(open(tmp_path / 'metrics.jsonl').read().splitlines()) == len(headline)
  assert json.load(open(tmp_path / 'config.json'))['record'] is False
  first = capsys.readouterr().out.splitlines()[0]  # the headline records as a table, not raw JSON
  assert not first.startswith('{') and first.split()[0] == next(iter(headline[0]))
  assert lib.CLAIMS
  for claim in lib.CLAIMS:
    stored = json.loads(json.dumps(claims_lib.results_lib.jsonable(dict(claim.measure(headline)))))
    assert claim.assess(stored).verdict in ('agree', 'partly', 'disagree')
    assert not claims_lib.differences(claim.config(), claim)  # the claim's config exists and is consistent
