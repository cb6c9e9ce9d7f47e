"""The heterogeneous pipeline experiment: a selective run at the smoke size counts k numbers per token on the
compressed replicas' links only; the whole smoke preset writes its files (slow); the claim's verdicts."""

import json

import numpy as np
import pytest

from experiments.configs import pipeline as pipeline_config
from experiments.lib import pipeline


def test_selective_run_counts_compressed_links_only():
  c = pipeline_config.get_config('smoke')
  problem = pipeline.make_problem(c)
  row = pipeline.run_one(problem, c, 'selective', 4)
  assert row['compressed'] == [True, True, False, False]
  # per step: M = 2 microbatches of 2 x 8 tokens cross the one link each way, float32; 2 replicas at k = 4 numbers
  # per token, 2 at d = 16; summed over the 4 steps
  per_step = 2 * 2 * (2 * 2 * 8) * 4 * (4 + 16)
  assert row['pp_bytes'] == c.steps * per_step
  assert row['dp_bytes'] > 0 and np.isfinite(row['val_loss']) and row['val_loss'] < 4.0
  assert [p['step'] for p in row['curve']] == [2, 4]          # an evaluation at each outer step


@pytest.mark.slow
def test_smoke_preset_writes_everything(tmp_path):
  rows = pipeline.run(pipeline_config.get_config('smoke'), str(tmp_path))
  assert [(r['mode'], r['k']) for r in rows] == [('none', 16), ('all', 4), ('selective', 4)]
  none, every, selective = rows
  assert len({r['tokens'] for r in rows}) == 1                                  # equal tokens
  assert every['pp_bytes'] * 4 == none['pp_bytes']                              # k = 4 of d = 16 per token
  assert every['pp_bytes'] < selective['pp_bytes'] < none['pp_bytes']
  assert [json.loads(l)['mode'] for l in open(tmp_path / 'metrics.jsonl')] == ['none', 'all', 'selective']
  assert (tmp_path / 'loss_vs_bytes.png').stat().st_size > 0
  assert 'selective' in pipeline.table(rows)


def _measured(gaps):
  out = {'none_val_loss': 1.0, 'ks': [16, 8, 4]}
  for k, g in zip([16, 8, 4], gaps):
    out[f'k{k}'] = {'all': 2.0, 'selective': 2.0 - g, 'gap': g, 'all_bytes': k, 'selective_bytes': 10 * k}
  return out


@pytest.mark.parametrize('gaps, verdict', [((0.01, 0.02, 0.05), 'agree'), ((0.03, 0.01, 0.05), 'partly'),
                                           ((0.01, 0.02, -0.01), 'disagree')])
def test_verdicts(gaps, verdict):
  assessment = pipeline.CLAIMS[0].assess(_measured(gaps))
  assert assessment.verdict == verdict
  assert ('fewer bytes' in assessment.why) == (verdict == 'disagree')  # only there does 'all' dominate
