"""Privacy-utility of RQM against the Poisson binomial mechanism (Youn, Hu, Ziani & Abernethy, arXiv 2306.11913;
library code of experiments/rqm.py).

For each mechanism and parameter (RQM: the level-keeping probability q at fixed levels; PBM: theta at a fixed
number of trials, with the same bits a coordinate), the privacy is epsilon at ``target_delta`` after ``rounds``
messages of ``dims`` coordinates, each client taking part with probability ``sampling_prob`` (the exact
subsampled RDP composed and converted by dp_accounting: :mod:`decentral.compression.privacy`,
:mod:`decentral.compression.poisson_binomial`), and the utility the worst-case variance of one coordinate's
unbiased estimate over inputs in [-c, c] (exact, from the output laws). ``run`` writes ``config.json``,
``metrics.jsonl`` (one row per point), ``results.json`` and ``frontier.png``.
"""

from __future__ import annotations

import numpy as np

from decentral.compression import poisson_binomial, privacy
from experiments.lib.common import claims
from experiments.lib.common import results as results_lib


def _rqm_variance(cfg, q):
  b = privacy.levels(cfg.rqm_delta, cfg.rqm_levels)
  worst = 0.0
  for x in np.linspace(-cfg.c, cfg.c, 41):
    p = privacy.output_distribution(float(x), c=cfg.c, delta=cfg.rqm_delta, m=cfg.rqm_levels, q=q)
    worst = max(worst, float(p @ b ** 2 - x * x))
  return worst


def run(cfg, workdir: str) -> list[dict]:
  writer = results_lib.Writer(workdir, cfg)
  common = dict(dims=cfg.dims, rounds=cfg.rounds, sampling_prob=cfg.sampling_prob)
  rows = []
  for q in cfg.rqm_q:
    eps, order = privacy.epsilon(cfg.target_delta, c=cfg.c, delta=cfg.rqm_delta, m=cfg.rqm_levels, q=q, **common)
    rows.append({'mechanism': 'rqm', 'param': q, 'epsilon': eps, 'order': order,
                 'variance': _rqm_variance(cfg, q)})
  for theta in cfg.pbm_theta:
    eps, order = poisson_binomial.pbm_epsilon(cfg.target_delta, m=cfg.pbm_trials, theta=theta, **common)
    rows.append({'mechanism': 'pbm', 'param': theta, 'epsilon': eps, 'order': order,
                 'variance': poisson_binomial.pbm_variance(0.0, c=cfg.c, m=cfg.pbm_trials, theta=theta)})
  writer.metrics(rows)
  writer.results({'rows': rows})
  writer.figure(_plot(rows), 'frontier.png')
  return rows


def _plot(rows):
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(5, 3.5))
  for name in ('rqm', 'pbm'):
    pts = sorted((r['epsilon'], r['variance']) for r in rows if r['mechanism'] == name)
    ax.plot(*zip(*pts), marker='o', label=name.upper())
  ax.set_xscale('log')
  ax.set_yscale('log')
  ax.set_xlabel('epsilon (dp_accounting, subsampled, composed)')
  ax.set_ylabel('worst-case variance of one coordinate')
  ax.legend()
  return fig


def table(rows) -> str:
  lines = [f"{'mech':>5} {'param':>6} {'epsilon':>9} {'variance':>9}"]
  lines += [f"{r['mechanism']:>5} {r['param']:6.3f} {r['epsilon']:9.3f} {r['variance']:9.4f}" for r in rows]
  return '\n'.join(lines)


def _measure(rows):
  """For each RQM point, the variance PBM needs at the same epsilon (log-log interpolation on its frontier)."""
  pbm = sorted((r['epsilon'], r['variance']) for r in rows if r['mechanism'] == 'pbm')
  e, v = np.log([p[0] for p in pbm]), np.log([p[1] for p in pbm])
  out = {'points': [], 'outside_pbm_range': 0}
  for r in rows:
    if r['mechanism'] != 'rqm':
      continue
    if not e[0] <= np.log(r['epsilon']) <= e[-1]:
      out['outside_pbm_range'] += 1
      continue
    pbm_var = float(np.exp(np.interp(np.log(r['epsilon']), e, v)))
    out['points'].append({'q': r['param'], 'epsilon': r['epsilon'], 'rqm_variance': r['variance'],
                          'pbm_variance': pbm_var})
  return out


def _assess(m) -> claims.Assessment:
  pts = m['points']
  if not pts:
    return claims.Assessment('no RQM point inside the PBM epsilon range', 'disagree', 'nothing to compare')
  ratios = [p['pbm_variance'] / p['rqm_variance'] for p in pts]
  wins = sum(x > 1 for x in ratios)
  ours = (f"PBM/RQM variance at equal epsilon: {', '.join(f'{x:.2f}' for x in ratios)} "
          f"(eps {pts[0]['epsilon']:.2f}..{pts[-1]['epsilon']:.2f}); RQM lower at {wins}/{len(pts)} points")
  if wins == len(pts):
    return claims.Assessment(ours, 'agree', 'RQM needs less variance than PBM at every matched epsilon')
  if wins:
    return claims.Assessment(ours, 'partly', 'RQM is better at some privacy levels, PBM at others')
  return claims.Assessment(ours, 'disagree', 'PBM is at least as accurate as RQM at every matched epsilon')


CLAIMS = (
    claims.Claim(
        id='rqm_vs_pbm', experiment='rqm', title='RQM vs Poisson binomial mechanism',
        paper='Youn, Hu, Ziani & Abernethy 2023', arxiv='2306.11913',
        claim='randomized quantization (RQM) gives a better privacy-accuracy trade-off than the Poisson binomial '
              'mechanism at the same communication',
        paper_number='RQM above PBM in privacy-accuracy (qualitative; their figures); here per-message RDP, '
                     'subsampled and composed with dp_accounting, against the estimate variance',
        measure=_measure, assess=_assess),
)
