"""Config of experiments/cbo.py (consensus-based optimization). Presets: '' (full), 'smoke'.

    python -m experiments.cbo --config=experiments/configs/cbo.py --workdir=/tmp/polyak/cbo
      Rastrigin d=10, 100 runs x 100 particles, 2000 steps (CBXpy's settings and default alpha scheduler), and
      the alignment of the consensus drift with -grad f over 19 alphas; the `cbo_rastrigin_cbxpy` and
      `cbo_gradient_alignment` claims.
    python -m experiments.cbo --config=experiments/configs/cbo.py:smoke
      10 runs x 40 particles, 300 steps, 5 alphas: seconds.
"""

import ml_collections


def get_config(preset: str = ''):
  c = ml_collections.ConfigDict()
  c.record = False          # write experiments/results/<claim>.json (only with a claim's exact config)
  c.seed = 0
  c.dim = 10
  c.runs = 100
  c.particles = 100
  c.steps = 2000
  c.dt = 0.01
  c.lam = 1.0
  c.alpha = 1.0
  c.alpha_growth = 1.05     # CBXpy's default scheduler: alpha *= 1.05 after every step ...
  c.alpha_max = 1e5         # ... up to 1e5
  c.sigma_anisotropic = 1.0
  c.noises = ('anisotropic', 'isotropic')
  c.sigma_isotropic = 0.3   # isotropic noise scales with ||x - v|| over all d coordinates: smaller sigma
  c.align_points = 200      # random points c in [-3, 3]^d
  c.align_particles = 100
  c.align_spread = 0.1      # particles c + s z, s = spread
  c.align_log_alpha = (-4.0, 5.0)
  c.align_num_alpha = 19
  if preset == 'smoke':
    c.runs = 10
    c.particles = 40
    c.steps = 300
    c.align_points = 20
    c.align_particles = 40
    c.align_num_alpha = 5
  elif preset:
    raise ValueError(f'unknown preset {preset!r}; known: smoke')
  return c
