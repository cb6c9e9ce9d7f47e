"""Config of experiments/hessian_spectrum.py. Presets: '' (full size, the figures), 'smoke'.

    python -m experiments.hessian_spectrum --config=experiments/configs/hessian_spectrum.py
      outliers on k Gaussian clusters, k = 2..10: 1, 2, 4, 4, 5, 8, 9 (k or k - 1; none with random labels);
      digits-PCA50 (10 classes): 2. 7.5 min on 2 CPU cores. The `hessian_outliers` claim.
    python -m experiments.hessian_spectrum --config=experiments/configs/hessian_spectrum.py:smoke
      k = 2, 3: 2, 2 outliers; digits-PCA10: 5; 1.7 min.
"""

import ml_collections


def get_config(preset: str = ''):
  c = ml_collections.ConfigDict()
  c.record = False          # write experiments/results/<claim>.json (only with a claim's exact config)
  c.seed = 0
  # k-cluster data (noise 1, cluster means of norm `separation`) and a one-hidden-layer tanh MLP trained by GD.
  c.num_points = 600
  c.dim = 20
  c.num_classes = 5
  c.hidden = 24
  c.separation = 1.5
  c.steps = 300
  c.learning_rate = 0.5
  # Outliers against the number of classes (one data set and initialisation per seed), bulk against width.
  c.classes = (2, 3, 4, 5, 6, 8, 10)
  c.class_seeds = 1
  c.widths = (8, 16, 32, 64)
  # SLQ (optim.slq) against the exact spectrum.
  c.slq_steps = (4, 8, 16, 32, 64, 128)
  c.slq_probes = (1, 4, 16)
  c.slq_repeats = 3
  # Mini-batch Hessians.
  c.batch_sizes = (8, 16, 32, 64, 128, 256)
  c.num_batches = 10
  # Real data reduced by PCA: scikit-learn's digits, or MNIST IDX files when data_dir is set.
  c.data_dir = ''
  c.real_points = 1000
  c.pca_dim = 50
  c.real_hidden = 24
  if preset == 'smoke':
    c.num_points = 150
    c.dim = 8
    c.num_classes = 3
    c.hidden = 8
    c.classes = (2, 3)
    c.widths = (4, 8)
    c.slq_steps = (4, 16)
    c.slq_probes = (1, 4)
    c.slq_repeats = 1
    c.batch_sizes = (8, 32)
    c.num_batches = 2
    c.real_points = 200
    c.pca_dim = 10
    c.real_hidden = 8
  elif preset:
    raise ValueError(f'unknown preset {preset!r}; known: smoke')
  return c
