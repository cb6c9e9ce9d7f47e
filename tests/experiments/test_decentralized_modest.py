"""experiments/decentralized: a tiny run of the MoDeST sub-experiment and its claim's assessment."""

from experiments.configs import decentralized as cfg
from experiments.lib import decentralized
from experiments.lib.decentralized import modest


def test_modest_tiny_run(tmp_path):
  c = cfg.get_config('smoke')
  c.experiment = 'modest'
  c.modest.update(num_nodes=8, sample_size=3, rounds=3, dsgd_rounds=2, local_steps=1, hidden=8, target=0.0)
  out = decentralized.run(c, str(tmp_path / 'modest'))
  rows = out['rows']
  assert [r['method'] for r in rows] == ['fedavg', 'modest', 'dsgd']
  assert all(r['time_to_target'] is not None and r['bytes_per_node'] > 0 for r in rows)
  assessment = modest.CLAIMS[0].assess(modest.CLAIMS[0].measure(out))
  assert assessment.verdict in ('agree', 'partly', 'disagree')
