"""Config of experiments/langevin_averaging.py. Presets: '' (full size, the figures), 'smoke'.

    python -m experiments.langevin_averaging --config=experiments/configs/langevin_averaging.py
      exponent of d in the sample threshold n* (claim: ceil(k/2) = 2): oracle 1.84, 2.11, 1.88, 2.84 and averaged
      Langevin 2.17, no fit, 0.43, -0.26 for tensor k = 3, 4 and single-index k = 3, 4; overlap of the average
      0.88-0.99 against 0.12-0.29 for the last iterate. 16 min on 2 CPU cores. The
      `langevin_averaging_threshold` claim.
    python -m experiments.langevin_averaging --config=experiments/configs/langevin_averaging.py:smoke
      tensor k = 3 at d = 6, 8: averaged overlap 0.86 against 0.06 for the last iterate; 1 min.
"""

import ml_collections


def get_config(preset: str = ''):
  c = ml_collections.ConfigDict()
  c.record = False          # write experiments/results/<claim>.json (only with a claim's exact config)
  c.problems = 'tensor:3,tensor:4,single_index:3,single_index:4'
  c.dims = (8, 12, 16, 24)            # simulated dimensions
  c.ratios = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)   # n / d^2
  c.seeds = 4
  c.eps_scale = 0.25                  # eps = eps_scale * d
  c.h_scale = 0.5                     # h = h_scale / d
  c.time_scale = 20.0                 # run for time time_scale * d (half burn-in)
  c.oracle_dims = (8, 16, 32, 48)     # the closed-form oracle, many seeds, for the threshold exponent
  c.oracle_ratios = 15
  c.oracle_seeds = 16
  c.trace_dim = 16
  c.trace_ratio = 10.0
  if preset == 'smoke':
    c.problems = 'tensor:3'
    c.dims = (6, 8)
    c.ratios = (1.0, 10.0)
    c.seeds = 1
    c.time_scale = 4.0
    c.oracle_dims = (6, 8)
    c.oracle_ratios = 4
    c.oracle_seeds = 2
    c.trace_dim = 8
  elif preset:
    raise ValueError(f'unknown preset {preset!r}; known: smoke')
  return c
