"""Config of experiments/gradient_coherence.py. Presets: '' (full size, the figures), 'smoke'.

    python -m experiments.gradient_coherence --config=experiments/configs/gradient_coherence.py \
        --config.data_dir=../shared/data/mnist
      m-coherence (m = 256, steps 1-200) real vs random labels: digits 2.9 vs 1.0, MNIST (2000 images) 2.6 vs 1.3;
      50% of 500 digits labels redrawn: wrong-label train accuracy 0.90 (SGD) vs 0.13 (winsorised, c = 10 of 100),
      test accuracy 0.55 vs 0.77. 13 min on 2 heavily loaded CPU cores. The `coherence_real_vs_random` and
      `coherence_suppression` claims.
    python -m experiments.gradient_coherence --config=experiments/configs/gradient_coherence.py:smoke
"""

import ml_collections


def get_config(preset: str = ''):
  c = ml_collections.ConfigDict()
  c.record = False          # write experiments/results/<claim>.json (only with a claim's exact config)
  c.seed = 0
  # Coherence through training (plain SGD), labels redrawn at these rates; digits, or MNIST when data_dir is set.
  c.data_dir = ''           # folder with MNIST IDX files; empty = scikit-learn's digits
  c.max_points = 2000       # training examples used (MNIST: the first ones of the split)
  c.fractions = (0.0, 1.0)
  c.hidden = (128, 128)
  c.steps = 600
  c.batch_size = 100
  c.learning_rate = 0.1
  c.eval_every = 20
  c.coherence_size = 256    # m, the fixed sample whose m-coherence is logged
  c.early_steps = 200       # the claim compares m-coherence averaged over steps 1..early_steps
  # Suppression: digits with a fraction of labels redrawn, plain SGD against winsorised SGD (c values moved on
  # each side of every coordinate, out of batch_size), and winsorised SGD with a larger learning rate (a control
  # for the shorter steps winsorising takes).
  c.noise_fraction = 0.5
  c.suppress_points = 500   # the first training examples of digits (a small set is memorised in 1000 steps)
  c.suppress_hidden = (64, 64)
  c.suppress_steps = 1000
  c.suppress_lr = 0.2
  c.winsor_c = 10
  c.control_lr = 0.4
  c.suppress_eval_every = 50
  if preset == 'smoke':
    c.max_points = 400
    c.hidden = (32,)
    c.steps, c.eval_every, c.coherence_size, c.early_steps = 60, 20, 64, 40
    c.suppress_hidden, c.suppress_points = (16,), 200
    c.suppress_steps, c.suppress_eval_every, c.batch_size, c.winsor_c = 40, 20, 20, 2
  elif preset:
    raise ValueError(f'unknown preset {preset!r}; known: smoke')
  return c
