"""DADAO on Poisson clocks: linear convergence of decentralized ridge regression and its sqrt(kappa) acceleration.

Ridge regression on digits split over n nodes by a Dirichlet label split (heterogeneous): node i holds
f_i(x) = |A_i x - y_i|^2 / (2 m_i) + lam |x|^2 / 2 (y the centred label), so its Hessian H_i is exact and x* is
solved in closed form. lam is set for a target condition number kappa = L / mu (L, mu over all f_i). For each
graph (ring, 2-D torus) and kappa, ``decentral.p2p.dadao`` runs on independent Poisson clocks (gradients at rate 1
per node, gossip at the uniform minimal edge rate, chi1* chi2* = 1/2) for ``horizon * sqrt(kappa)`` time units.

Measured: the log-error slope per unit time (fitted while the relative error is between 1e-2 and 1e-8), and from
it the gradient and communication events per decade of error (per node). The paper (arXiv 2208.00779) bounds
them by O(n sqrt(L/mu) log(1/eps)) gradients and O(n sqrt(chi1 chi2) sqrt(L/mu) log(1/eps)) communications: an
accelerated method's gradients per decade grow as kappa^(1/2), a non-accelerated one's as kappa.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from decentral.p2p import dadao as dadao_lib
from decentral.p2p import topology
from experiments.lib.common import claims
from experiments.lib.decentralized import harness

COLUMNS = ['graph', 'kappa', 'slope', 'grads_per_decade', 'comms_per_decade', 'final_rel_error', 'gradients',
           'communications']


def _ridge(config, kappa):
  data = harness.shards(config.num_nodes, config.dirichlet, config.seed)
  hess, lin = [], []
  for x, y, m in zip(data.x, data.y, data.counts):
    a, t = np.asarray(x[:m], np.float64), np.asarray(y[:m], np.float64) - 4.5
    hess.append(a.T @ a / m)
    lin.append(a.T @ t / m)
  hess, lin = np.stack(hess), np.stack(lin)
  eig = np.linalg.eigvalsh(hess)
  lo, hi = eig[:, 0].min(), eig[:, -1].max()
  lam = max((hi - kappa * lo) / (kappa - 1), 0.0)   # (hi + lam) / (lo + lam) = kappa
  hess = hess + lam * np.eye(hess.shape[-1])
  x_star = np.linalg.solve(hess.sum(0), lin.sum(0))
  return hess, lin, lo + lam, hi + lam, x_star


def _edges(name, n):
  if name == 'ring':
    mixing = topology.ring(n).mixing
  elif name == 'torus':
    side = int(round(np.sqrt(n)))
    mixing = topology.torus(side, n // side).mixing
  else:
    raise ValueError(f'dadao experiment: unknown graph {name!r} (ring or torus)')
  return [(int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(mixing, 1)))]


def _one(config, graph, kappa):
  n = config.num_nodes
  hess, lin, mu, lip, x_star = _ridge(config, kappa)
  edges = _edges(graph, n)
  rate = dadao_lib.minimal_edge_rate(n, edges)
  chi1, _ = dadao_lib.graph_constants(n, edges, rate)
  t_max = config.horizon * np.sqrt(lip / mu)
  trace = dadao_lib.dadao_events(n, edges, t_max=t_max, edge_rates=rate, seed=config.seed)
  h, g, star = jnp.asarray(hess), jnp.asarray(lin), jnp.asarray(x_star)
  x0 = jnp.zeros((n, hess.shape[-1]))
  base = float(jnp.mean(jnp.sum((x0 - star) ** 2, axis=1)))
  _, errors = dadao_lib.dadao_run(trace, x0, lambda x, i: h[i] @ x - g[i], dadao_lib.dadao_constants(mu, lip, chi1),
                                  monitor=lambda s: jnp.mean(jnp.sum((s.x - star) ** 2, axis=1)) / base)
  errors, times = np.asarray(errors), np.asarray(trace.times)
  window = (errors < 1e-2) & (errors > 1e-8)
  if window.sum() < 10:   # too slow to reach the window: fit the second half of the run
    window = times > t_max / 2
  slope = float(np.polyfit(times[window], np.log(errors[window]), 1)[0])
  counts = trace.counts()
  per_decade = np.log(10) / max(-slope, 1e-300) / t_max / n   # the fraction of the run one decade takes, per node
  return {'graph': graph, 'kappa': float(lip / mu), 'slope': slope,
          'grads_per_decade': per_decade * counts['gradients'],
          'comms_per_decade': per_decade * counts['communications'], 'final_rel_error': float(errors[-1]),
          'gradients': counts['gradients'], 'communications': counts['communications'], 'chi1_chi2': 0.5}


def run(config, writer) -> list[dict]:
  previous = jax.config.jax_enable_x64
  jax.config.update('jax_enable_x64', True)   # errors down to 1e-8 and below
  try:
    return _run(config, writer)
  finally:
    jax.config.update('jax_enable_x64', previous)


def _run(config, writer) -> list[dict]:
  rows = []
  for graph in str(config.graphs).split(','):
    for kappa in (float(k) for k in str(config.kappas).split(',')):
      row = _one(config, graph, kappa)
      rows.append(row)
      writer.metrics([row])
      print(harness.table([row], COLUMNS).splitlines()[-1], flush=True)
  writer.results({'rows': rows})
  writer.text(table(rows))
  return rows


def table(rows) -> str:
  return harness.table(rows, COLUMNS)


def _measure(outputs) -> dict:
  rows = outputs['rows']
  out = {}
  for graph in dict.fromkeys(r['graph'] for r in rows):
    pts = [r for r in rows if r['graph'] == graph]
    exponent = np.polyfit(np.log([r['kappa'] for r in pts]), np.log([r['grads_per_decade'] for r in pts]), 1)[0]
    out[graph] = {'kappa': [r['kappa'] for r in pts], 'grads_per_decade': [r['grads_per_decade'] for r in pts],
                  'comms_per_decade': [r['comms_per_decade'] for r in pts], 'kappa_exponent': float(exponent)}
  return out


def _assess(m) -> claims.Assessment:
  parts = [f"{g}: gradients per node per decade {', '.join(f'{v:.3g}' for v in r['grads_per_decade'])} at kappa "
           f"{', '.join(f'{k:.0f}' for k in r['kappa'])} (exponent {r['kappa_exponent']:.2f}); communications per "
           f"node per decade {', '.join(f'{v:.3g}' for v in r['comms_per_decade'])}" for g, r in m.items()]
  exponents = [r['kappa_exponent'] for r in m.values()]
  ours = '; '.join(parts)
  if all(0.3 <= e <= 0.7 for e in exponents):
    return claims.Assessment(ours, 'agree', 'linear convergence with gradients (and communications) per decade '
                             'growing as about sqrt(kappa): accelerated, as the paper states')
  if all(e < 0.85 for e in exponents):
    return claims.Assessment(ours, 'partly', 'linear convergence and sub-linear growth in kappa, but off sqrt(kappa)')
  return claims.Assessment(ours, 'disagree', 'gradients per decade grow about as kappa: no acceleration visible')


CLAIMS = (
    claims.Claim(
        id='dadao_acceleration', experiment='decentralized', title='DADAO: accelerated linear rate on Poisson clocks',
        paper='Nabli and Oyallon 2023', arxiv='2208.00779',
        claim='independent Poisson clocks for local gradients and for each edge\'s gossip reach precision eps with '
              'O(n sqrt(L/mu) log(1/eps)) gradients and O(n sqrt(chi1 chi2) sqrt(L/mu) log(1/eps)) communications',
        paper_number='gradients and communications per decade of error grow as sqrt(kappa) (exponent 1/2)',
        measure=_measure, assess=_assess, overrides={'experiment': 'dadao'}),
)
