"""Config of experiments/rqm.py (RQM vs PBM privacy-utility). Presets: '' (full), 'smoke'.

    python -m experiments.rqm --config=experiments/configs/rqm.py
      the `rqm_vs_pbm` claim (numbers in experiments/results/rqm_vs_pbm.json); seconds.
"""

import ml_collections


def get_config(preset: str = ''):
  c = ml_collections.ConfigDict()
  c.record = False          # write experiments/results/<claim>.json (only with a claim's exact config)
  c.c = 1.0                 # clipping bound of each coordinate
  c.rqm_levels = 16         # 4 bits a coordinate
  c.rqm_delta = 1.5         # outermost level, Delta > c
  c.rqm_q = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
  c.pbm_trials = 15         # outputs 0..15: 4 bits a coordinate
  c.pbm_theta = (0.01, 0.015, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.25)
  c.dims = 1                # coordinates per message (epsilon grows with dims for both alike)
  c.rounds = 100
  c.sampling_prob = 0.1
  c.target_delta = 1e-5
  if preset == 'smoke':
    c.rqm_q = (0.3, 0.6)
    c.pbm_theta = (0.02, 0.1, 0.25)
  elif preset:
    raise ValueError(f'unknown preset {preset!r}; known: smoke')
  return c
