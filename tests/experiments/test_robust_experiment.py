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


def test_heatmap_spells_out_attacks_and_rules_and_its_colour_bar_has_ticks():
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  results = [{'rule': rule, 'f': 1, 'alpha': 1.0, 'attack': attack, 'test_accuracy': acc}
             for rule, attack, acc in [('monna(beta=0.9)', 'a_little_is_enough', 0.4),
                                       ('monna(beta=0.9)', 'sign_flipping', 0.7),
                                       ('nnm+trimmed_mean', 'fall_of_empires', 0.5)]]
  fig = robust.heatmap(results)
  ax, bar = fig.axes
  assert [t.get_text() for t in ax.get_yticklabels()] == [
      'MoNNA (momentum + nearest-neighbour averaging), β = 0.9', 'nearest-neighbour mixing + trimmed mean']
  assert sorted(t.get_text() for t in ax.texts) == ['0.40\nALIE', '0.50\nFOE']
  caption = ' '.join(t.get_text() for t in fig.texts)
  for spelled in ('ALIE = a little is enough', 'SF = sign flipping', 'FOE = fall of empires'):
    assert spelled in caption
  assert len(bar.get_yticks()) == 6 and 'accuracy' in bar.get_ylabel()
  assert robust.table(results).splitlines()[-1].startswith('attacks: ALIE = a little is enough')
  plt.close(fig)
