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

The non-accelerated baseline runs on the same clocks and graph (the first of ``graphs``): the asynchronous
primal-dual gradient method (``decentral.p2p.dadao.primal_dual_run``, gamma = 1/L, dual step beta = c gamma
mu^2 chi1* / 4, the critically damped choice for the slowest consensus mode times c), with c the best of
``baseline_scales`` for each kappa (its most negative slope), run ``baseline_horizon`` times as long as DADAO.

A second sweep holds kappa (``sweep_kappa``) and changes the graph (``sweep_graphs``: complete, exponential,
torus, ring on the same n nodes): chi1 chi2 of the uniform edge-probability Laplacian (Laplacian / |E|, the
official code's normalisation) spans two orders of magnitude. The total gossip rate is sqrt(2 chi1 chi2) by
construction (the minimal rate), so what the sweep measures is whether the time per decade, hence the gradients
per decade, stays the same on every graph at that rate: then the communications per decade grow as
sqrt(chi1 chi2), the paper's second bound.
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
  elif name == 'complete':
    mixing = topology.complete(n).mixing
  elif name == 'exponential':
    mixing = topology.exponential(n).mixing
  else:
    raise ValueError(f'dadao experiment: unknown graph {name!r} (ring, torus, complete or exponential)')
  return [(int(i), int(j)) for i, j in zip(*np.nonzero(np.triu(mixing, 1)))]


def _fit(errors, times, t_max):
  """The log-error slope per unit time, fitted while the error is between 1e-2 and 1e-8 (else the second half)."""
  window = (errors < 1e-2) & (errors > 1e-8)
  if window.sum() < 10:   # too slow to reach the window: fit the second half of the run
    window = times > t_max / 2
  return float(np.polyfit(times[window], np.log(errors[window]), 1)[0])


def _baseline(config, graph, kappa):
  """The primal-dual baseline's best row over the dual-step scales (see the module docstring)."""
  n = config.num_nodes
  hess, lin, mu, lip, x_star = _ridge(config, kappa)
  edges = _edges(graph, n)
  rate = dadao_lib.minimal_edge_rate(n, edges)
  chi1, _ = dadao_lib.graph_constants(n, edges, rate)
  t_max = config.baseline_horizon * config.horizon * np.sqrt(lip / mu)
  trace = dadao_lib.dadao_events(n, edges, t_max=t_max, edge_rates=rate, seed=config.seed)
  h, g, star = jnp.asarray(hess), jnp.asarray(lin), jnp.asarray(x_star)
  x0 = jnp.zeros((n, hess.shape[-1]))
  base = float(jnp.mean(jnp.sum((x0 - star) ** 2, axis=1)))
  times, counts, best = np.asarray(trace.times), trace.counts(), None
  grad, monitor = _ridge_grad(h, g), _error(star, base)   # the same functions: one compilation for every scale
  for scale in (float(c) for c in str(config.baseline_scales).split(',')):
    _, errors = dadao_lib.primal_dual_run(trace, x0, grad, step=1.0 / lip,
                                          dual_step=scale * mu ** 2 * chi1 / (4 * lip), monitor=monitor)
    errors = np.asarray(errors)
    if not np.all(np.isfinite(errors)) or errors[-1] >= 1.0:   # diverged at this dual step
      continue
    slope = _fit(errors, times, t_max)
    if best is None or slope < best['slope']:
      per_decade = np.log(10) / max(-slope, 1e-300) / t_max / n
      best = {'graph': graph, 'kappa': float(lip / mu), 'slope': slope, 'dual_scale': scale,
              'grads_per_decade': per_decade * counts['gradients'],
              'comms_per_decade': per_decade * counts['communications'], 'final_rel_error': float(errors[-1]),
              'gradients': counts['gradients'], 'communications': counts['communications'], 'part': 'baseline'}
  return best


def _ridge_grad(h, g):
  return lambda x, i: h[i] @ x - g[i]


def _error(star, base):
  return lambda x: jnp.mean(jnp.sum((x - star) ** 2, axis=1)) / base


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
  slope = _fit(errors, times, t_max)
  counts = trace.counts()
  per_decade = np.log(10) / max(-slope, 1e-300) / t_max / n   # the fraction of the run one decade takes, per node
  chi1_p, chi2_p = dadao_lib.graph_constants(n, edges, 1.0 / len(edges))   # of the edge-probability Laplacian
  return {'graph': graph, 'kappa': float(lip / mu), 'slope': slope,
          'grads_per_decade': per_decade * counts['gradients'],
          'comms_per_decade': per_decade * counts['communications'], 'final_rel_error': float(errors[-1]),
          'gradients': counts['gradients'], 'communications': counts['communications'], 'chi1_chi2': 0.5,
          'sqrt_chi1_chi2': float(np.sqrt(chi1_p * chi2_p))}


def run(config, writer) -> list[dict]:
  previous = jax.config.jax_enable_x64
  jax.config.update('jax_enable_x64', True)   # errors down to 1e-8 and below
  try:
    return _run(config, writer)
  finally:
    jax.config.update('jax_enable_x64', previous)


def _run(config, writer) -> list[dict]:
  done = {}

  def one(graph, kappa):  # a (graph, kappa) of both sweeps runs once
    if (graph, kappa) not in done:
      done[graph, kappa] = _one(config, graph, kappa)
      writer.metrics([done[graph, kappa]])
      print(harness.table([done[graph, kappa]], COLUMNS + ['sqrt_chi1_chi2']).splitlines()[-1], flush=True)
    return done[graph, kappa]

  rows = [{**one(g, float(k)), 'part': 'kappa'} for g in str(config.graphs).split(',')
          for k in str(config.kappas).split(',')]
  rows += [{**one(g, float(config.sweep_kappa)), 'part': 'graph'} for g in str(config.sweep_graphs).split(',')]
  first = str(config.graphs).split(',')[0]
  for kappa in str(config.kappas).split(','):
    row = _baseline(config, first, float(kappa))
    if row is not None:
      rows.append(row)
      writer.metrics([row])
      print('baseline ' + harness.table([row], COLUMNS + ['dual_scale']).splitlines()[-1], flush=True)
  writer.results({'rows': rows})
  writer.text(table(rows))
  return rows


def table(rows) -> str:
  """The kappa sweep, then the graph sweep (rows tagged ``part``: 'kappa' or 'graph')."""
  parts = [harness.table([r for r in rows if r.get('part', 'kappa') == 'kappa'], COLUMNS)]
  sweep = [r for r in rows if r.get('part') == 'graph']
  if sweep:
    parts.append(harness.table(sweep, ['graph', 'sqrt_chi1_chi2'] + COLUMNS[1:]))
  baseline = [r for r in rows if r.get('part') == 'baseline']
  if baseline:
    parts.append('non-accelerated primal-dual baseline\n' + harness.table(baseline, COLUMNS + ['dual_scale']))
  return '\n\n'.join(parts)


def _measure(outputs) -> dict:
  rows = [r for r in outputs['rows'] if r.get('part', 'kappa') == 'kappa']
  out = {}
  for graph in dict.fromkeys(r['graph'] for r in rows):
    pts = [r for r in rows if r['graph'] == graph]
    exponent = np.polyfit(np.log([r['kappa'] for r in pts]), np.log([r['grads_per_decade'] for r in pts]), 1)[0]
    out[graph] = {'kappa': [r['kappa'] for r in pts], 'grads_per_decade': [r['grads_per_decade'] for r in pts],
                  'comms_per_decade': [r['comms_per_decade'] for r in pts], 'kappa_exponent': float(exponent)}
  base = [r for r in outputs['rows'] if r.get('part') == 'baseline']
  if len(base) >= 2:
    exponent = np.polyfit(np.log([r['kappa'] for r in base]), np.log([r['grads_per_decade'] for r in base]), 1)[0]
    out['baseline'] = {'graph': base[0]['graph'], 'kappa': [r['kappa'] for r in base],
                       'grads_per_decade': [r['grads_per_decade'] for r in base],
                       'dual_scale': [r['dual_scale'] for r in base], 'kappa_exponent': float(exponent)}
  return out


def _assess(m) -> claims.Assessment:
  graphs = {g: r for g, r in m.items() if g != 'baseline'}
  parts = [f"{g}: gradients per node per decade {', '.join(f'{v:.3g}' for v in r['grads_per_decade'])} at kappa "
           f"{', '.join(f'{k:.0f}' for k in r['kappa'])} (exponent {r['kappa_exponent']:.2f}); communications per "
           f"node per decade {', '.join(f'{v:.3g}' for v in r['comms_per_decade'])}" for g, r in graphs.items()]
  exponents = [r['kappa_exponent'] for r in graphs.values()]
  base = ''
  if 'baseline' in m:
    b = m['baseline']
    parts.append(f"non-accelerated primal-dual baseline ({b['graph']}, best dual step): gradients per node per "
                 f"decade {', '.join(f'{v:.3g}' for v in b['grads_per_decade'])} (exponent "
                 f"{b['kappa_exponent']:.2f})")
    base = f"; the non-accelerated baseline on the same clocks grows with exponent {b['kappa_exponent']:.2f}"
  ours = '; '.join(parts)
  if all(0.3 <= e <= 0.7 for e in exponents):
    return claims.Assessment(ours, 'agree', 'linear convergence with gradients (and communications) per decade '
                             'growing as about sqrt(kappa): accelerated, as the paper states' + base)
  if all(e < 0.85 for e in exponents):
    return claims.Assessment(ours, 'partly', 'linear convergence and sub-linear growth in kappa, but off sqrt(kappa)')
  return claims.Assessment(ours, 'disagree', 'gradients per decade grow about as kappa: no acceleration visible')


def _measure_sweep(outputs) -> dict:
  sweep = [r for r in outputs['rows'] if r.get('part') == 'graph']
  x = [r['sqrt_chi1_chi2'] for r in sweep]
  exponent = np.polyfit(np.log(x), np.log([r['comms_per_decade'] for r in sweep]), 1)[0]
  return {'kappa': sweep[0]['kappa'], 'graphs': [r['graph'] for r in sweep], 'sqrt_chi1_chi2': x,
          'comms_per_decade': [r['comms_per_decade'] for r in sweep],
          'grads_per_decade': [r['grads_per_decade'] for r in sweep], 'chi_exponent': float(exponent)}


def _assess_sweep(m) -> claims.Assessment:
  grads = m['grads_per_decade']
  spread = max(grads) / min(grads)
  ours = (f"kappa {m['kappa']:.0f}, " + ', '.join(
      f'{g}: sqrt(chi1 chi2) {x:.3g}, comms {c:.3g}, grads {d:.3g} per node per decade'
      for g, x, c, d in zip(m['graphs'], m['sqrt_chi1_chi2'], m['comms_per_decade'], grads)) +
      f"; exponent of comms in sqrt(chi1 chi2) {m['chi_exponent']:.2f}, gradients per decade max/min {spread:.2f}")
  if 0.8 <= m['chi_exponent'] <= 1.2 and spread < 1.5:
    return claims.Assessment(ours, 'agree', 'at the minimal gossip rate the time per decade is about the same on '
                             'every graph, so communications grow as sqrt(chi1 chi2) and gradients do not change '
                             '(the gossip rate itself is sqrt(2 chi1 chi2) by construction)')
  if spread < 2.0:
    return claims.Assessment(ours, 'partly', 'the gradients per decade barely depend on the graph, but the '
                             'communications do not follow sqrt(chi1 chi2) closely')
  return claims.Assessment(ours, 'disagree', 'the time per decade depends on the graph at the minimal gossip rate')


CLAIMS = (
    claims.Claim(
        id='dadao_acceleration', experiment='decentralized', title='DADAO: accelerated linear rate on Poisson clocks',
        paper='Nabli and Oyallon 2023', arxiv='2208.00779',
        claim='independent Poisson clocks for local gradients and for each edge\'s gossip reach precision eps with '
              'O(n sqrt(L/mu) log(1/eps)) gradients and O(n sqrt(chi1 chi2) sqrt(L/mu) log(1/eps)) communications',
        paper_number='gradients and communications per decade of error grow as sqrt(kappa) (exponent 1/2)',
        measure=_measure, assess=_assess, overrides={'experiment': 'dadao'}),
    claims.Claim(
        id='dadao_communication', experiment='decentralized', title='DADAO: communications against sqrt(chi1 chi2)',
        paper='Nabli and Oyallon 2023', arxiv='2208.00779',
        claim='at a gossip rate set by chi1 chi2 the number of communications to reach precision eps is '
              'O(n sqrt(chi1 chi2) sqrt(L/mu) log(1/eps)) on any graph, while the gradients stay O(n sqrt(L/mu) '
              'log(1/eps))',
        paper_number='communications per decade proportional to sqrt(chi1 chi2) across graphs (exponent 1)',
        measure=_measure_sweep, assess=_assess_sweep, overrides={'experiment': 'dadao'}),
)
