"""Config of the robust-aggregation grid (experiments/robust.py). Presets: '' (full grid), 'medium', 'smoke'.

The full grid: n=16 workers, f in {0, 1, 3}, Dirichlet alpha in {1, 0.1}, every attack against mean, median,
trimmed mean, Krum, geometric median, NNM + trimmed mean and MoNNA with beta in {0, 0.99}.
"""

import ml_collections

ALL_ATTACKS = ('sign_flipping,inner_product_manipulation,a_little_is_enough,fall_of_empires,mimic,gaussian,'
               'not_a_number,label_flipping,optimal_alie,optimal_ipm')


def get_config(preset: str = ''):
  c = ml_collections.ConfigDict()
  c.data_dir = ''            # MNIST IDX folder (e.g. ../shared/data/mnist); empty = scikit-learn's digits
  c.num_workers = 16
  c.faults = '0,1,3'
  c.alphas = '1,0.1'
  c.rules = 'mean,median,trimmed_mean,krum,geometric_median,nnm+trimmed_mean,monna'
  c.monna_betas = '0,0.99'
  c.attacks = ALL_ATTACKS
  c.momentum = 0.9           # worker momentum (an EMA) of the server-style rules, as ByzFL's benchmark
  c.learning_rate = 0.5
  c.batch_size = 32
  c.steps = 300
  c.hidden = 64
  c.seed = 0
  if preset == 'smoke':
    c.rules = 'mean,trimmed_mean,monna'
    c.monna_betas = '0.99'
    c.faults = '0,3'
    c.alphas = '1'
    c.attacks = 'sign_flipping,a_little_is_enough,not_a_number'
    c.steps = 60
  elif preset == 'medium':
    c.steps = 150
  elif preset:
    raise ValueError(f'unknown preset {preset!r}; known: smoke, medium')
  return c
