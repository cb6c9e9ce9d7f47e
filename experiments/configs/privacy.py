"""Config of experiments/privacy.py (DP-SGD vs DiceSGD, the Bayesian audit, the f-DP limits). Presets: '' (full),
'smoke'.

    python -m experiments.privacy --config=experiments/configs/privacy.py --workdir=/tmp/polyak/privacy
      digits, eps in {1, 2, 4, 8} x 2 seeds: DiceSGD - DP-SGD test accuracy +0.075, +0.047, +0.028, +0.014;
      Bayesian / Clopper-Pearson interval width 0.63; the max test meets the kappa bound up to 1.01-1.05 x
      1/sqrt(2 ln M). ~2.2 CPU-minutes (6.5 min wall on a loaded 2-core machine). The three claims.
    python -m experiments.privacy --config=experiments/configs/privacy.py:smoke
      the same pipeline at toy sizes (~45 CPU-seconds, most of it XLA compiling the two trainers); not for claims.
"""

import ml_collections


def get_config(preset: str = ''):
  c = ml_collections.ConfigDict()
  c.record = False          # write experiments/results/<claim>.json (only with a claim's exact config)
  c.data_dir = ''           # MNIST IDX files (e.g. ../shared/data/mnist); '' = scikit-learn's digits
  c.seed = 0
  c.hidden = (32,)          # the MLP's hidden widths
  c.batch_size = 64         # expected Poisson batch: q = batch_size / N
  c.steps = 400
  c.chunk = 16              # models trained in one vmapped call (every call one shape: one compilation)
  c.learning_rate = 0.5
  c.clip = 1.0              # C (C1 for DiceSGD)
  c.error_clip_ratio = 1.0  # DiceSGD's C2 / C1 (the official code's default ratio)
  c.dice_convention = 'paper'
  c.delta = 1e-5
  c.epsilons = (1.0, 2.0, 4.0, 8.0)
  c.seeds = 2
  c.bias_clip = 0.05        # the noiseless clipping-bias check: a clip well below the per-example gradient norms
  c.bias_learning_rates = (0.5, 0.1, 0.02)  # ... at these learning rates, divided by the clip (the code's lr / C)
  c.canaries = 64           # mislabelled canaries, each in each audit model with probability 1/2
  c.audit_models = 32
  c.audit_epsilon = 8.0
  c.white_box_sigma = 1.0   # the worst-case canary audit through optim.dp_sgd_aggregate
  c.white_box_rate = 0.05
  c.white_box_steps = 100
  c.white_box_models = 4000
  c.synthetic_mu = 1.0       # the known-scores width comparison: N(mu, 1) vs N(0, 1), threshold mu / 2
  c.synthetic_trials = (100, 1000, 10000)
  c.pld_discretization = 1e-3
  c.floor_steps = (10, 100, 1000, 10000, 1000000)
  c.floor_grid = 80
  if preset == 'smoke':
    c.steps = 30
    c.epsilons = (2.0, 8.0)
    c.seeds = 1
    c.chunk = 4
    c.canaries = 16
    c.audit_models = 4
    c.white_box_steps = 5
    c.white_box_models = 400
    c.floor_steps = (100, 1000)
    c.floor_grid = 20
    c.synthetic_trials = (100,)
    c.bias_learning_rates = (0.5,)
  elif preset:
    raise ValueError(f'unknown preset {preset!r}; known: smoke')
  return c
