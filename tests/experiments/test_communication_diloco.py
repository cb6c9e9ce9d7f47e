"""experiments/communication --config.experiment=diloco: a tiny run writes its files with exact byte counts."""

import json
import os

from experiments.configs import communication as cfg
from experiments.lib import communication


def test_tiny_diloco_run_counts_bytes_exactly(tmp_path):
  c = cfg.get_config('smoke')
  c.experiment = 'diloco'
  c.diloco.update(steps=8, warmup=2, eval_every=8, d_model=16, block=16, batch_size=2,
                  methods='streaming_p2_t1', streaming_sync_every=4)
  out = communication.run(c, str(tmp_path))
  (streaming,), text = out['rows'], communication.table(out)
  sizes = json.load(open(tmp_path / 'results.json'))['leaf_sizes']
  # Streaming, H = 4: 8 steps send two models' worth of FP4 outer gradients, ceil(size / 2) + 4 bytes a leaf.
  assert streaming['bytes_per_worker'] == 2 * sum((s + 1) // 2 + 4 for s in sizes)
  assert streaming['peak_bytes_per_step'] < streaming['bytes_per_worker'] / 2 and 'streaming_p2_t1' in text
  for name in ('metrics.jsonl', 'results.json', 'table.txt', 'loss_vs_bytes.png', 'config.json'):
    assert os.path.exists(tmp_path / name)
