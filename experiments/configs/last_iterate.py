"""Config of experiments/last_iterate.py. Presets: '' (full: T up to 1e4, 100 seeds), 'smoke'.

    python -m experiments.last_iterate --config=experiments/configs/last_iterate.py --workdir=/tmp/polyak/last_iterate
      seven cases, the `last_iterate_rates` claim; about 4 min on 2 loaded CPU cores.
    python -m experiments.last_iterate --config=experiments/configs/last_iterate.py:smoke
"""

import ml_collections


def get_config(preset: str = ''):
  c = ml_collections.ConfigDict()
  c.record = False
  c.seed = 0
  c.cases = ('lipschitz_convex', 'lipschitz_strongly_convex', 'smooth_convex', 'composite_strongly_convex',
             'simplex_mirror_descent', 'heavy_tailed_convex', 'heavy_tailed_composite')
  c.t_max = 10_000
  c.num_seeds = 100
  c.dim = 10
  c.t_min = 100          # slopes are fitted over T >= t_min
  if preset == 'smoke':
    c.t_max = 1000
    c.num_seeds = 16
    c.dim = 4
  elif preset:
    raise ValueError(f'unknown preset {preset!r}; known: smoke')
  return c
