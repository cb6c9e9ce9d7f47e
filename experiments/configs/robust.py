"""Config of the robust-aggregation grid (experiments/robust.py). Presets: '' (full grid), 'medium', 'monna',
'smoke'.

The full grid: n=16 workers, f in {0, 1, 3}, Dirichlet alpha in {1, 0.1}, every attack against mean, median,
trimmed mean, Krum, geometric median, NNM + trimmed mean and MoNNA with beta in {0, 0.99}; the table is the
worst-case test accuracy over attacks.

    python -m experiments.robust --config=experiments/configs/robust.py:monna
      D-SGD (mean) and MoNNA only: worst case at f = 3, alpha = 1 (0.1): MoNNA(0.99) 0.946 (0.888), MoNNA(0)
      0.871 (0.388), mean 0.075 (NaN attack); attack-free mean 0.964. 2.7 min on 2 CPU cores. The `robust_monna`
      claim.
    python -m experiments.robust --config=experiments/configs/robust.py:smoke
      3 rules, 3 attacks, 60 steps: worst case at f = 3 mean 0.075, trimmed mean 0.897, MoNNA(0.99) 0.808; 1 min.
    python -m experiments.robust --config=experiments/configs/robust.py:medium      # the full grid at 150 steps
      worst case at f = 3, alpha = 1 (0.1): geometric median 0.939 (0.618), NNM + trimmed mean 0.933 (0.123),
      trimmed mean 0.925 (0.482), MoNNA(0.99) 0.917 (0.799), MoNNA(0) 0.866 (0.894), Krum 0.783 (0.281),
      median 0.922 (0.106), mean 0.075 (0.075); 9.5 min.
    python -m experiments.robust --config=experiments/configs/robust.py             # the full grid, 300 steps
      about twice the medium preset's time (not timed here).
"""

import ml_collections

ALL_ATTACKS = ('sign_flipping,inner_product_manipulation,a_little_is_enough,fall_of_empires,mimic,gaussian,'
               'not_a_number,label_flipping,optimal_alie,optimal_ipm')


def get_config(preset: str = ''):
  c = ml_collections.ConfigDict()
  c.record = False          # write experiments/results/<claim>.json (only with a claim's exact config)
  c.data_dir = ''            # MNIST IDX folder (e.g. ../shared/data/mnist); empty = scikit-learn's digits
  c.num_workers = 16
  c.backend = 'vmap'         # the worker axis: vmap (one process), shard_map or pmap (devices, processes)
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
  elif preset == 'monna':   # the slice of the grid the MoNNA claim reads: D-SGD (mean) and MoNNA, every attack
    c.rules = 'mean,monna'
    c.faults = '0,3'
  elif preset:
    raise ValueError(f'unknown preset {preset!r}; known: smoke, medium, monna')
  return c
