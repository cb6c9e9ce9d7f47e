"""The robust-aggregation grid: Dirichlet shards, a tiny batched run end to end, the worst-case table."""

import json
import os

import numpy as np

from experiments.configs import robust as robust_config
from experiments.lib import robust


def test_shards_cover_every_honest_worker_and_map_the_faulty_ones():
  labels = np.repeat(np.arange(10), 30)
  s = robust.shards(labels, n=16, f=3, alpha=0.1, seed=0)
  assert s.table.shape[0] == 16 and np.all(s.count > 0)
  for j in range(3):  # faulty worker 13 + j trains (when label flipping) on honest shard j
    assert s.count[13 + j] == s.count[j]
    np.testing.assert_array_equal(s.table[13 + j, :s.count[j]], s.table[j, :s.count[j]])
  honest = np.concatenate([s.table[i, :s.count[i]] for i in range(13)])
  assert sorted(honest.tolist()) == list(range(300))  # the honest shards partition the data


def test_tiny_grid_runs_and_tabulates(tmp_path):
  c = robust_config.get_config('smoke')
  c.num_workers, c.steps, c.hidden, c.batch_size = 4, 3, 8, 8
  c.rules, c.monna_betas, c.faults, c.alphas = 'mean,monna', '0,0.9', '1', '1,0.1'
  c.attacks = 'sign_flipping,label_flipping'
  results = robust.run(c, str(tmp_path))
  rows = [json.loads(line) for line in open(tmp_path / 'metrics.jsonl')]
  assert len(rows) == len(results) == 2 * 2 + 2 * 2 * 2  # mean: alpha x attack; monna: alpha x beta x attack
  assert {r['rule'] for r in rows} == {'mean', 'monna(beta=0)', 'monna(beta=0.9)'}
  assert all(0 <= r['test_accuracy'] <= 1 and len(r['loss_curve']) == 3 for r in rows)
  text = open(tmp_path / 'table.txt').read()
  assert 'worst-case' in text and 'monna(beta=0.9)' in text and 'f=1 a=0.1' in text
  assert os.path.getsize(tmp_path / 'heatmap.png') > 0
  worst = robust.worst_case(rows)
  for (rule, f, alpha), (acc, attack) in worst.items():
    assert acc == min(r['test_accuracy'] for r in rows if (r['rule'], r['f'], r['alpha']) == (rule, f, alpha))
