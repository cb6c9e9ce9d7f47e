"""Small-Gain Nash certificates: the paper's mini-toy, its 64-d LQ game and the entropy-regularised Markov game.

    python -m experiments.sgn --workdir=/tmp/polyak/sgn
    python -m experiments.sgn --config=experiments/configs/sgn.py:smoke

Writes ``config.json``, ``results.json`` (every number), ``metrics.jsonl`` (the headline numbers next to the
paper's) and ``margins.png``, ``band.png``, ``phase_euler.png``, ``phase_rk4.png``, ``markov.png``.
"""

from __future__ import annotations

import json
import os

from absl import app, flags
import jax
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
from ml_collections import config_flags
import numpy as np

from experiments.lib.jsonable import jsonable as _jsonable
from theory import sgn

_CONFIG = config_flags.DEFINE_config_file('config', os.path.join(os.path.dirname(__file__), 'configs', 'sgn.py'))
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/sgn', 'Where results and plots go.')


def run(cfg, workdir: str) -> dict:
  """Runs every SGN experiment, writes the JSON and the figures, returns the headline records."""
  os.makedirs(workdir, exist_ok=True)
  kw = dict(d=cfg.lq_dim, a=cfg.lq_a, b=cfg.lq_b, seed=cfg.lq_seed)
  toy = sgn.mini_toy()
  sweep = sgn.lq_sweep(tuple(np.linspace(0, 2.5, cfg.num_lambdas)), **kw)
  band = sgn.lq_band(cfg.band_lambda, tuple(np.geomspace(0.1, 1e4, cfg.num_ratios)), **kw)
  phase_lams = tuple(np.linspace(0, 1.4, cfg.phase_lambdas + 1)[:-1])
  phase = sgn.lq_phase(phase_lams, steps=cfg.phase_steps, num_pairs=cfg.phase_pairs, **kw)
  suite = sgn.lq_random_suite(num_games=cfg.random_games, d=cfg.lq_dim, a=cfg.lq_a, b=cfg.lq_b)
  markov = sgn.markov_game(num_seeds=cfg.markov_seeds, steps=cfg.markov_steps,
                           multipliers=tuple(np.logspace(-1, 1, cfg.markov_multipliers)))
  euler = [r for r in phase['records'] if r['method'] == 'euler' and r['multiplier'] < 1]
  rk4 = [r for r in phase['records'] if r['method'] == 'rk4' and r['multiplier'] <= 1]
  headline = [
      {'name': 'mini_toy_alpha', 'value': toy['alpha_sgn'], 'paper': 0.2929},
      {'name': 'mini_toy_euclidean_margin', 'value': toy['euclidean_margin'], 'paper': -4.025},
      {'name': 'mini_toy_band', 'value': list(toy['band'])},
      {'name': 'lq_euclidean_fails_at_lambda', 'value': float(sweep['lambdas'][np.argmax(sweep['gamma_euc'] <= 0)])},
      {'name': 'lq_sgn_fails_at_lambda', 'value': float(sweep['lambdas'][np.argmax(sweep['alpha_sgn'] <= 0)]),
       'closed_form': 1 / np.sqrt(cfg.lq_a * cfg.lq_b)},
      {'name': 'lq_max_alpha_true_minus_sgn', 'value': float(np.max(np.abs(sweep['alpha_true'] - sweep['alpha_sgn'])))},
      {'name': 'lq_band_at_lambda', 'lam': cfg.band_lambda, 'value': list(band['band'])},
      {'name': 'lq_euler_max_rate_inside_bound', 'value': max(r['rate'] for r in euler),
       'max_certified_factor': max(r['certified_factor'] for r in euler)},
      {'name': 'lq_euler_rate_minus_certified_factor_max',
       'value': max(r['rate'] - r['certified_factor'] for r in euler)},
      {'name': 'lq_rk4_max_rate_inside_guideline', 'value': max(r['rate'] for r in rk4)},
      {'name': 'lq_rk4_guideline_over_true_min',
       'value': float(np.min(sweep['rk4_guideline'][sweep['alpha_sgn'] > 0] / sweep['rk4_true'][sweep['alpha_sgn'] > 0]))},
      {'name': 'lq_random_rate_euclidean', 'lambdas': suite['lambdas'], 'value': suite['rate_euclidean']},
      {'name': 'lq_random_rate_sgn', 'lambdas': suite['lambdas'], 'value': suite['rate_sgn'],
       'paper': '1.0 up to lambda~1.25, 0 from 1.67'},
      {'name': 'markov_alpha', 'value': markov['alpha'], 'r_best': markov['r_best'], 'paper': '~0.33 at r~1'},
      {'name': 'markov_band', 'value': list(markov['band']), 'paper': '~0.13-7'},
      {'name': 'markov_eta_max', 'value': markov['eta_max'], 'beta': markov['beta']},
      {'name': 'markov_empirical_over_certified', 'value': markov['empirical_over_certified'],
       'linear_over_certified': markov['linear_over_certified'], 'paper': 'converges up to ~5x, fails at >=6x'},
  ]
  results = {'mini_toy': toy, 'lq_sweep': sweep, 'lq_band': band, 'lq_phase': phase['records'],
             'lq_random_suite': suite, 'markov': markov}
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    f.write(cfg.to_json(indent=2))
  with open(os.path.join(workdir, 'results.json'), 'w') as f:
    json.dump(_jsonable(results), f)
  with open(os.path.join(workdir, 'metrics.jsonl'), 'w') as f:
    for rec in headline:
      f.write(json.dumps(_jsonable(rec)) + '\n')
  for name, draw in (('margins', lambda: sgn.plot_margins(sweep)), ('band', lambda: sgn.plot_band(band)),
                     ('phase_euler', lambda: sgn.plot_phase(phase, 'euler')),
                     ('phase_rk4', lambda: sgn.plot_phase(phase, 'rk4')), ('markov', lambda: sgn.plot_markov(markov))):
    draw()
    plt.gcf().tight_layout()
    plt.savefig(os.path.join(workdir, f'{name}.png'), dpi=120)
    plt.close('all')
  return headline


def main(argv):
  del argv
  for rec in run(_CONFIG.value, _WORKDIR.value):
    print(json.dumps(_jsonable(rec)))
  print(f'\nwrote {_WORKDIR.value}/results.json, metrics.jsonl and the PNGs')


if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(main)
