"""experiments.launch: the robust grid on 2 real processes (shard_map over both) equals the one-process run."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from experiments.configs import robust as robust_config
from experiments.lib import robust

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = dict(num_workers=4, steps=4, hidden=8, batch_size=8, rules='trimmed_mean,monna', monna_betas='0.9',
            faults='1', alphas='1', attacks='sign_flipping,a_little_is_enough')


@pytest.mark.slow  # processes are tested by tests/decentral/test_multiprocess.py by default
def test_two_processes_give_the_one_process_results(tmp_path):
  c = robust_config.get_config('smoke')
  c.update(TINY)
  want = robust.run(c, str(tmp_path / 'one'))
  overrides = [f'--config.{k}={v}' for k, v in TINY.items()]
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  done = subprocess.run(
      [sys.executable, '-m', 'experiments.launch', '--num_processes=2', '--devices_per_process=2', '--timeout=240',
       '--', sys.executable, '-m', 'experiments.robust', '--config=experiments/configs/robust.py:smoke',
       '--config.backend=shard_map', f'--workdir={tmp_path / "two"}', *overrides],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-2000:]
  got = json.load(open(tmp_path / 'two' / 'results.json'))['runs']
  assert len(got) == len(want) == 4
  for a, b in zip(got, want):
    assert (a['rule'], a['attack']) == (b['rule'], b['attack'])
    np.testing.assert_allclose(a['test_accuracy'], b['test_accuracy'], atol=1e-6)
    np.testing.assert_allclose(a['loss_curve'], b['loss_curve'], rtol=1e-5)
  assert 'worst-case' in done.stdout and done.stdout.count('worst-case') == 1  # only process 0 prints
