"""Last-iterate rates of stochastic (mirror) gradient methods (library code of experiments/last_iterate.py;
Liu & Zhou, 2312.08531): measured F(x_T) - F* quantiles against T, fitted slopes beside the bounds' exponents.

``run`` writes ``config.json``, ``results.json``, ``metrics.jsonl`` (one headline record per case) and
``rates.png``.
"""

from __future__ import annotations

from experiments.lib.common import claims
from experiments.lib.common import results as results_lib
from theory import last_iterate

table = results_lib.headline_table
LIGHT = ('lipschitz_convex', 'lipschitz_strongly_convex', 'smooth_convex', 'composite_strongly_convex',
         'simplex_mirror_descent')


def _measure(headline):
  return {r['case']: {'slope': r['slope_median'], 'slope_last_decade': r['slope_median_last_decade'],
                      'predicted': r['predicted_exponent'], 'bound_slope': r['bound_slope']} for r in headline}


def _assess(m) -> claims.Assessment:
  light = [k for k in LIGHT if k in m]
  heavy = [k for k in m if k not in LIGHT]
  ours = '; '.join(f"{k}: {m[k]['slope']:.2f} (bound {m[k]['predicted']:.2f})" for k in m)
  off = [k for k in light if abs(m[k]['slope'] - m[k]['predicted']) > 0.15]
  heavy_off = [k for k in heavy if abs(m[k]['slope'] - m[k]['predicted']) > 0.15]
  if off:
    return claims.Assessment(ours, 'disagree', f'light-tailed slopes off the bound exponent: {", ".join(off)}')
  if heavy_off:
    last = ', '.join(f"{k} {m[k]['slope_last_decade']:.2f} over the last decade" for k in heavy_off)
    return claims.Assessment(ours, 'partly', 'light-tailed slopes match the exponents of the bounds within 0.15; '
                             f'heavy-tailed noise: still pre-asymptotic at T = 1e4 ({last})')
  return claims.Assessment(ours, 'agree', 'every fitted slope is within 0.15 of the exponent of its bound')


CLAIMS = (
    claims.Claim(
        id='last_iterate_rates', experiment='last_iterate', title='Last-iterate rates of SGD / CSMD',
        paper='Liu & Zhou 2024', arxiv='2312.08531',
        claim='the last iterate of (composite, mirror) SGD converges at the optimal rates up to log T, on unbounded '
              'domains, also under heavy-tailed noise',
        paper_number='T^-1/2 (convex), T^-1 (strongly convex), T^((1-p)/p), T^(2(1-p)/p) (p-th moment noise)',
        measure=_measure, assess=_assess),
)


def run(cfg, workdir: str) -> list[dict]:
  """Runs every case, writes JSON and the figure, returns the headline records."""
  writer = results_lib.Writer(workdir, cfg)
  cases = last_iterate.rate_experiment(tuple(cfg.cases), t_max=cfg.t_max, num_seeds=cfg.num_seeds, dim=cfg.dim,
                                       t_min=cfg.t_min, seed=cfg.seed)
  writer.figure(last_iterate.plot_rates(cases), 'rates.png')
  headline = [{'case': c['name'], 'setting': c['setting'], 'geometry': c['geometry'], 'noise': c['noise'],
               'p': c['p'], 'schedule': c['schedule'], 'slope_median': c['slopes'][0.5],
               'slope_q90': c['slopes'][0.9], 'slope_average_iterate': c['slopes_average'][0.5],
               'slope_median_last_decade': c['slopes_last_decade'][0.5],
               'predicted_exponent': c['predicted_exponent'], 'bound_slope': c['bound_slope'],
               'final_median': float(c['median'][-1]), 'T_max': int(c['T'][-1]),
               **({'mean_over_exact': float(c['mean_over_exact'][-1])} if 'mean_over_exact' in c else {})}
              for c in cases]
  writer.results({'cases': cases})
  writer.metrics(headline)
  return headline
