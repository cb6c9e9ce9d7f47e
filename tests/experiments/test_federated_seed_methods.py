"""experiments/federated's FedSpeed, FedSVD and curricula sub-experiments: tiny runs and their claims' verdicts."""

from __future__ import annotations

import pytest

from experiments.configs import federated as cfg
from experiments.lib import federated


def _tiny(name, **fields):
  c = cfg.get_config('smoke')
  c.experiment = name
  c[name].update(**fields)
  return c


def test_fedspeed_tiny_run(tmp_path):
  rows = federated.run(_tiny('fedspeed', local_steps='2', rounds=1, eval_every=1, num_clients=6, per_round=2),
                       str(tmp_path / 'fedspeed'))['rows']
  assert [r['method'] for r in rows] == ['fedavg', 'fedspeed'] and all(0 <= r['final_accuracy'] <= 1 for r in rows)


@pytest.mark.slow
def test_fedsvd_and_curricula_tiny_runs(tmp_path):
  rows = federated.run(_tiny('fedsvd', epsilons='3', rounds=1, eval_every=1, seeds=1),
                       str(tmp_path / 'fedsvd'))['rows']
  assert [r['method'] for r in rows] == ['fedsvd', 'ffa', 'fedavg'] and rows[0]['noise_multiplier'] > 0
  rows = federated.run(_tiny('curricula', rounds=1, eval_every=1, num_clients=6, per_round=2, expert_epochs=2,
                             orderings='curriculum'), str(tmp_path / 'curricula'))['rows']
  assert [r['ordering'] for r in rows] == ['curriculum'] and 0 <= rows[0]['accuracy'] <= 1


def test_claim_verdicts_follow_the_numbers():
  (speed,) = federated.fedspeed.CLAIMS
  rows = [{'local_steps': k, 'method': m, 'rounds_to_target': r, 'reached': 1, 'final_accuracy': 0.9}
          for k, m, r in ((5, 'fedavg', 40), (5, 'fedspeed', 35), (20, 'fedavg', 30), (20, 'fedspeed', 25))]
  assert speed.assess({'rows': rows}).verdict == 'agree'
  rows[3]['rounds_to_target'] = 45
  assert speed.assess({'rows': rows}).verdict == 'disagree'
  (svd,) = federated.fedsvd.CLAIMS
  rows = [{'epsilon': e, 'noise_multiplier': 1.0, 'method': m, 'final_accuracy': a, 'final_std': 0.0}
          for e in (6.0, 0.0) for m, a in (('fedsvd', 0.8), ('ffa', 0.7), ('fedavg', 0.6))]
  assert svd.assess({'rows': rows}).verdict == 'agree'
  (cur,) = federated.curricula.CLAIMS
  rows = [{'alpha': a, 'ordering': 'curriculum', 'accuracy': 0.8, 'std': 0.0, 'gain': g}
          for a, g in ((0.1, 0.05), (0.0, 0.01))]
  assert cur.assess({'rows': rows}).verdict == 'agree'
  rows[0]['gain'] = -0.01
  assert cur.assess({'rows': rows}).verdict == 'disagree'
  for claim in (speed, svd, cur):
    assert claim.config().experiment in federated.EXPERIMENTS
