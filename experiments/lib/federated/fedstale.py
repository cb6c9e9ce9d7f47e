"""FedStale's trade-off: how much of the stale updates to mix in (beta) as participation grows heterogeneous.

N clients of digits (or MNIST) split by Dirichlet(alpha) over labels; client i participates in each round
independently with probability pi_i (:func:`decentral.federated.sampling.bernoulli`):

- ``homogeneous``: every pi_i = ``p_homogeneous``;
- ``heterogeneous``: half the clients at ``p_high``, half at ``p_low`` (the FedStale paper's setting: half always
  there, half rarely).

For each participation law and each beta in ``betas``, :func:`decentral.federated.stale_updates.fedstale` (beta =
0: unbiased FedAvg, 1: FedVARP) trains for ``rounds`` rounds; the score is the mean test accuracy over the last
``tail`` evaluations (and the final training loss). The paper's guideline (arXiv 2405.04171): stale updates help
more under high data heterogeneity and less under high participation heterogeneity, so the best beta should be
high under homogeneous participation and lower (interior) under heterogeneous participation.
"""

from __future__ import annotations

import numpy as np
import optax

from decentral.federated import rounds, sampling, stale_updates
from experiments.lib.common import claims
from experiments.lib.federated import common


def _probabilities(c, law):
  if law == 'homogeneous':
    return np.full(c.num_clients, c.p_homogeneous)
  half = c.num_clients // 2
  return np.concatenate([np.full(half, c.p_high), np.full(c.num_clients - half, c.p_low)])


def run(c, writer) -> list[dict]:
  rows = []
  betas = [float(b) for b in str(c.betas).split(',')]
  problem = common.image_problem(data_dir=c.data_dir, num_clients=c.num_clients, alpha=c.alpha, hidden=c.hidden,
                                 seed=c.seed, max_train=c.max_train)
  local = rounds.Local(optax.sgd(c.local_learning_rate), steps=c.local_steps, batch_size=c.batch_size)
  for law in c.laws.split(','):
    sampler = sampling.bernoulli(_probabilities(c, law))
    for beta in betas:
      accs, fed = [], None
      for seed in range(c.seeds):
        out = common.train(problem, stale_updates.fedstale(beta), local=local, sampler=sampler,
                           num_rounds=c.rounds, eval_every=c.eval_every, seed=c.seed + seed, writer=writer,
                           tag={'law': law, 'beta': beta, 'seed': seed}, fed=fed)
        fed = out['fed']
        accs.append(np.mean([a for _, a in out['curve'][-c.tail:]]))
      rows.append({'law': law, 'beta': beta, 'accuracy': float(np.mean(accs)), 'std': float(np.std(accs)),
                   'seeds': c.seeds, 'alpha': c.alpha, 'rounds': c.rounds})
  writer.results({'rows': rows})
  writer.text(table(rows))
  return rows


def best_beta(rows, law):
  mine = [r for r in rows if r['law'] == law]
  return max(mine, key=lambda r: r['accuracy'])['beta']


def table(rows: list[dict]) -> str:
  lines = [f"{'participation':<14} {'beta':>5} {'accuracy (tail mean)':>21} {'std':>7}"]
  for r in rows:
    lines.append(f"{r['law']:<14} {r['beta']:>5.2f} {r['accuracy']:>21.4f} {r['std']:>7.4f}")
  laws = sorted({r['law'] for r in rows})
  lines.append('best beta: ' + ', '.join(f'{law} {best_beta(rows, law):.2f}' for law in laws)
               + f" (alpha {rows[0]['alpha']}, {rows[0]['rounds']} rounds, {rows[0]['seeds']} seeds)")
  return '\n'.join(lines)


def _measure(outputs):
  rows = outputs['rows']
  return {'accuracy': {f"{r['law']}:{r['beta']}": r['accuracy'] for r in rows},
          'std': {f"{r['law']}:{r['beta']}": r['std'] for r in rows},
          'best_beta': {law: best_beta(rows, law) for law in sorted({r['law'] for r in rows})}}


def _assess(m) -> claims.Assessment:
  best = m['best_beta']
  acc = m['accuracy']
  spread = {law: max(v for k, v in acc.items() if k.startswith(law)) - min(v for k, v in acc.items()
                                                                          if k.startswith(law)) for law in best}
  ours = (f"best beta {best.get('homogeneous')} (homogeneous participation) vs {best.get('heterogeneous')} "
          f"(heterogeneous); accuracy spread over beta {spread.get('homogeneous', 0):.3f} / "
          f"{spread.get('heterogeneous', 0):.3f}")
  hom, het = best.get('homogeneous'), best.get('heterogeneous')
  if hom > het:
    return claims.Assessment(ours, 'agree', 'the best beta drops when participation turns heterogeneous')
  if hom == het and spread.get('heterogeneous', 0) > spread.get('homogeneous', 0):
    return claims.Assessment(ours, 'disagree', f'beta = {hom} is best under both laws, and the stale updates help '
                             'more, not less, when participation is heterogeneous')
  if hom == het:
    return claims.Assessment(ours, 'partly', f'beta = {hom} is best under both laws, though the stale updates matter '
                             'less under heterogeneous participation')
  return claims.Assessment(ours, 'disagree', 'the best beta rises when participation turns heterogeneous')


CLAIMS = (
    claims.Claim(
        id='fedstale_beta_tradeoff', experiment='federated', title='FedStale: beta vs participation heterogeneity',
        paper='Rodio & Neglia 2024', arxiv='2405.04171',
        claim='stale updates (large beta) help less when participation is heterogeneous: the best beta drops',
        paper_number='guideline: large beta under homogeneous participation, smaller under heterogeneous (MNIST, '
                     'CIFAR-10)',
        measure=_measure, assess=_assess, preset='medium',
        overrides={'experiment': 'fedstale'}),
)
