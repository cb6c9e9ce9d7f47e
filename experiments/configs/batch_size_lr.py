"""Config of experiments/batch_size_lr.py. Presets: '' (full), 'smoke'.

    python -m experiments.batch_size_lr --config=experiments/configs/batch_size_lr.py \
      --workdir=/tmp/polyak/batch_size_lr
      the `batch_size_lr_scaling` claim; about 3 min on 2 loaded CPU cores.
    python -m experiments.batch_size_lr --config=experiments/configs/batch_size_lr.py:smoke
"""

import ml_collections


def get_config(preset: str = ''):
  c = ml_collections.ConfigDict()
  c.record = False
  c.seed = 0
  # Marchenko-Pastur / BBP: eigenvalues of X_B^T X_B / B, Gaussian rows, one spike.
  c.spectrum_dim = 400
  c.spectrum_batches = (25, 50, 100, 200, 400, 800, 1600)
  c.spike = 10.0
  c.spectrum_repeats = 10
  # Learning-rate sweep: online least squares, fixed step budget.
  c.dim = 50
  c.batch_sizes = (1, 2, 4, 8, 16, 32, 64)
  c.steps = 300
  c.noise = 0.0
  c.num_lrs = 30
  c.seeds = 4
  if preset == 'smoke':
    c.spectrum_dim = 60
    c.spectrum_batches = (15, 60)
    c.spectrum_repeats = 2
    c.dim = 20
    c.batch_sizes = (1, 4)
    c.steps = 50
    c.num_lrs = 6
    c.seeds = 2
  elif preset:
    raise ValueError(f'unknown preset {preset!r}; known: smoke')
  return c
