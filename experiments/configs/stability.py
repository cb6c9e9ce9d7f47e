"""Config of experiments/stability.py. Presets: '' (full size, the figures), 'smoke'.

    python -m experiments.stability --config=experiments/configs/stability.py --workdir=/tmp/polyak/stability
      exact threshold: GD eta* lambda_max = 2.000; B = 1: eta* tr(H) <= 1.970 over 200 random problems (= 2 with
      equal gradient norms); B = 2, 4: up to 3.29, 4.60. 6 min on 2 CPU cores. The `stability_trace_threshold`
      claim.
    python -m experiments.stability --config=experiments/configs/stability.py:smoke
      GD eta* lambda_max = 2.000, B = 1: eta* tr(H) <= 1.955; 1.2 min.
"""

import ml_collections


def get_config(preset: str = ''):
  c = ml_collections.ConfigDict()
  c.record = False          # write experiments/results/<claim>.json (only with a claim's exact config)
  c.seed = 0
  # Exact linear stability on random rank-one per-sample Hessians (T is dim^2 x dim^2).
  c.num_points = 40
  c.dim = 20
  c.num_lrs = 40
  c.num_chains = 8192
  c.mc_steps = 100
  c.survey_cases = 200
  # Diagonal linear network <u * v, x>: sparse teacher, u = init_scale * 1, v = 0.
  c.diag_points = 40
  c.diag_dim = 100
  c.diag_sparsity = 5
  c.diag_init = 0.3
  c.diag_lrs = (0.02, 0.6, 12)     # geomspace(min, max, num)
  c.diag_steps = 10000
  # Two-layer ReLU network on the unit sphere, two-neuron teacher.
  c.relu_points = 50
  c.relu_dim = 10
  c.relu_width = 50
  c.relu_init = 1.0
  c.relu_lrs = (0.25, 3.0, 10)
  c.relu_steps = 15000
  c.tolerance = 1e-8              # final loss below this counts as interpolation
  c.middle_batch = 4              # batch sizes: 1, middle_batch, n (GD)
  if preset == 'smoke':
    c.num_points = 12
    c.dim = 5
    c.num_lrs = 12
    c.num_chains = 1024
    c.mc_steps = 30
    c.survey_cases = 10
    c.diag_points = 16
    c.diag_dim = 30
    c.diag_sparsity = 2
    c.diag_lrs = (0.02, 0.3, 4)
    c.diag_steps = 2000
    c.relu_points = 20
    c.relu_dim = 5
    c.relu_width = 40
    c.relu_lrs = (0.3, 3.0, 4)
    c.relu_steps = 6000
    c.tolerance = 1e-6
  elif preset:
    raise ValueError(f'unknown preset {preset!r}; known: smoke')
  return c
