"""Config of experiments/benign_oscillation.py. Presets: '' (full size, the figures), 'smoke'.

    python -m experiments.benign_oscillation --config=experiments/configs/benign_oscillation.py
      weak-only test accuracy 0.50 (eta = 0.05) vs 0.67 (eta = 0.8, 0.85 x 2/lambda_max); weak alignment A_v 0.03 vs
      0.80; all seeds diverge at eta = 0.9. 3 min on 2 loaded CPU cores. The `benign_oscillation_weak_features` claim.
    python -m experiments.benign_oscillation --config=experiments/configs/benign_oscillation.py:smoke
"""

import ml_collections


def get_config(preset: str = ''):
  c = ml_collections.ConfigDict()
  c.record = False          # write experiments/results/<claim>.json (only with a claim's exact config)
  c.seeds = (0, 1, 2, 3, 4)
  # Feature-noise data: weak feature in every example, strong one in a fraction, three patches in R^dim.
  c.num_points = 200
  c.num_test = 2000         # weak-only test examples
  c.dim = 200
  c.strong_fraction = 0.8
  c.weak_norm = 1.0
  c.strong_norm = 5.0
  c.noise_std = 1.0
  # Two-layer CNN (width filters per class, squared ReLU, square loss) trained by SGD at every learning rate.
  c.width = 20
  c.init_std = 0.01
  c.activation = 'relu2'
  c.loss = 'square'
  c.steps = 2000
  c.batch_size = 10
  c.log_every = 50
  c.learning_rates = (0.05, 0.2, 0.4, 0.6, 0.7, 0.8, 0.9)
  c.small_lr = 0.05         # the claim compares these two rates
  c.large_lr = 0.8
  if preset == 'smoke':
    c.seeds = (0,)
    c.num_points, c.num_test, c.dim, c.width = 60, 200, 40, 6
    c.steps, c.log_every = 100, 50
    c.learning_rates = (0.05, 0.8)
  elif preset:
    raise ValueError(f'unknown preset {preset!r}; known: smoke')
  return c
