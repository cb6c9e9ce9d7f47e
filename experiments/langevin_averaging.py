"""Langevin dynamics with iterate averaging on tensor PCA and single-index models (Wei, Damian & Lee).

    python -m experiments.langevin_averaging --workdir=/tmp/polyak/langevin
    python -m experiments.langevin_averaging --config=experiments/configs/langevin_averaging.py:smoke

For each problem (``model:k``): simulated last / averaged iterates and the closed-form oracle against
``n / d^2``, the oracle's threshold exponent over more dimensions and seeds, and a time trace. Writes
``config.json``, ``results.json``, ``metrics.jsonl`` and ``collapse_<model>_k<k>.png``,
``trace_<model>_k<k>.png``.
"""

from __future__ import annotations

import json
import math
import os

from absl import app, flags
import jax
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
from ml_collections import config_flags
import numpy as np

from experiments.lib.jsonable import jsonable as _jsonable
from theory import langevin

_CONFIG = config_flags.DEFINE_config_file('config', os.path.join(os.path.dirname(__file__), 'configs',
                                                                 'langevin_averaging.py'))
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/langevin', 'Where results and plots go.')


def run(cfg, workdir: str) -> list[dict]:
  """Runs every problem, writes the JSON and the figures, returns the headline records."""
  os.makedirs(workdir, exist_ok=True)
  results, headline = {}, []
  for spec in cfg.problems.split(','):
    model, k = spec.split(':')
    k = int(k)
    sim = langevin.sweep(k, model, cfg.dims, cfg.ratios, cfg.seeds, cfg.eps_scale, cfg.h_scale, cfg.time_scale)
    orc = langevin.oracle_sweep(k, model, cfg.oracle_dims, tuple(np.geomspace(0.03, 100, cfg.oracle_ratios)),
                                cfg.oracle_seeds)
    trace = langevin.time_trace(k, model, cfg.trace_dim, cfg.trace_ratio, cfg.eps_scale, cfg.h_scale,
                                cfg.time_scale)
    fit_oracle = langevin.threshold_exponent(orc)
    fit_average = langevin.threshold_exponent(sim, 'average')
    name = f'{model}_k{k}'
    results[name] = {'simulated': sim, 'oracle': orc, 'trace': trace, 'fit_oracle': fit_oracle,
                     'fit_average': fit_average}
    med = {key: np.median(sim[key], axis=-1) for key in ('last', 'average', 'oracle', 'oracle_cosine')}
    headline.append({
        'problem': name, 'oracle_threshold_exponent': fit_oracle['exponent'],
        'average_threshold_exponent': fit_average['exponent'], 'claim_ceil': math.ceil(k / 2), 'claim_half': k / 2,
        'median_last_at_largest_n': med['last'][:, -1], 'median_average_at_largest_n': med['average'][:, -1],
        'median_oracle_cosine_at_largest_n': med['oracle_cosine'][:, -1], 'dims': sim['dims'],
        'last_over_time': float(np.mean(trace['trace_last'][len(trace['trace_last']) // 2:])),
        'average_at_end': float(trace['trace_average'][-1])})
    axes = langevin.plot_collapse(sim, 'average')
    plt.gcf().tight_layout()
    plt.savefig(os.path.join(workdir, f'collapse_{name}.png'), dpi=120)
    langevin.plot_collapse(orc, 'oracle')
    plt.gcf().tight_layout()
    plt.savefig(os.path.join(workdir, f'collapse_oracle_{name}.png'), dpi=120)
    langevin.plot_trace(trace)
    plt.gcf().tight_layout()
    plt.savefig(os.path.join(workdir, f'trace_{name}.png'), dpi=120)
    plt.close('all')
    del axes
  with open(os.path.join(workdir, 'config.json'), 'w') as f:
    f.write(cfg.to_json(indent=2))
  with open(os.path.join(workdir, 'results.json'), 'w') as f:
    json.dump(_jsonable(results), f)
  with open(os.path.join(workdir, 'metrics.jsonl'), 'w') as f:
    for rec in headline:
      f.write(json.dumps(_jsonable(rec)) + '\n')
  return headline


def main(argv):
  del argv
  for rec in run(_CONFIG.value, _WORKDIR.value):
    print(json.dumps(_jsonable(rec)))
  print(f'\nwrote {_WORKDIR.value}/results.json, metrics.jsonl and the PNGs')


if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(main)
