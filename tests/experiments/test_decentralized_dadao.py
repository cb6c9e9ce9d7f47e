"""experiments/decentralized, the dadao sub-experiment: a tiny run, its table and its claim's assessment."""

from experiments.configs import decentralized as cfg
from experiments.lib import decentralized


def test_dadao_tiny_run(tmp_path, x64):
  c = cfg.get_config('smoke')
  c.experiment = 'dadao'
  c.dadao.num_nodes, c.dadao.kappas, c.dadao.horizon, c.dadao.sweep_kappa = 4, '4,16', 40.0, 4.0
  out = decentralized.run(c, str(tmp_path / 'dadao'))
  rows = [r for r in out['rows'] if r['part'] == 'kappa']
  assert [r['graph'] for r in rows] == ['ring', 'ring'] and all(r['slope'] < 0 for r in rows)
  assert rows[1]['grads_per_decade'] > rows[0]['grads_per_decade']   # harder problem, more gradients per decade
  assert 'grads_per_decade' in decentralized.table(out)
  (claim,) = [cl for cl in decentralized.CLAIMS if cl.id == 'dadao_acceleration']
  assessment = claim.assess(claim.measure(out))
  assert assessment.verdict in ('agree', 'partly', 'disagree') and 'ring' in assessment.ours
  sweep = [r for r in out['rows'] if r['part'] == 'graph']   # complete then ring, the ring's kappa-4 run reused
  assert [r['graph'] for r in sweep] == ['complete', 'ring'] and sweep[1] == {**rows[0], 'part': 'graph'}
  assert sweep[0]['sqrt_chi1_chi2'] < sweep[1]['sqrt_chi1_chi2']
  (claim,) = [cl for cl in decentralized.CLAIMS if cl.id == 'dadao_communication']
  assert claim.assess(claim.measure(out)).verdict in ('agree', 'partly', 'disagree')
  baseline = [r for r in out['rows'] if r['part'] == 'baseline']   # the non-accelerated primal-dual baseline
  assert [r['graph'] for r in baseline] == ['ring', 'ring'] and all(r['slope'] < 0 for r in baseline)
  (accel,) = [cl for cl in decentralized.CLAIMS if cl.id == 'dadao_acceleration']
  assert 'baseline' in accel.measure(out) and 'baseline' in accel.assess(accel.measure(out)).ours
