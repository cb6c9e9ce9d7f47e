"""experiments/decentralized, the dadao sub-experiment: a tiny run, its table and its claim's assessment."""

from experiments.configs import decentralized as cfg
from experiments.lib import decentralized


def test_dadao_tiny_run(tmp_path, x64):
  c = cfg.get_config('smoke')
  c.experiment = 'dadao'
  c.dadao.num_nodes, c.dadao.kappas, c.dadao.horizon = 4, '4,16', 40.0
  out = decentralized.run(c, str(tmp_path / 'dadao'))
  rows = out['rows']
  assert [r['graph'] for r in rows] == ['ring', 'ring'] and all(r['slope'] < 0 for r in rows)
  assert rows[1]['grads_per_decade'] > rows[0]['grads_per_decade']   # harder problem, more gradients per decade
  assert 'grads_per_decade' in decentralized.table(out)
  (claim,) = [cl for cl in decentralized.CLAIMS if cl.id == 'dadao_acceleration']
  assessment = claim.assess(claim.measure(out))
  assert assessment.verdict in ('agree', 'partly', 'disagree') and 'ring' in assessment.ours
