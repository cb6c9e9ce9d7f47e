"""Config of the main job (experiments/compare.py). Presets: '' (default) and 'smoke'."""

import ml_collections


def get_config(preset: str = ''):
  c = ml_collections.ConfigDict()
  c.optimizers = ''        # comma-separated registry names; empty = every registered optimizer
  c.exclude_tags = 'slow'  # registry tags left out when optimizers is empty
  c.model = 'mlp'
  c.data_dir = ''          # MNIST IDX folder; empty = scikit-learn's bundled digits
  c.steps = 300
  c.batch_size = 128
  c.seed = 0
  c.log_every = 10
  if preset == 'smoke':
    c.steps = 30
  elif preset:
    raise ValueError(f'unknown preset {preset!r}; known: smoke')
  return c
