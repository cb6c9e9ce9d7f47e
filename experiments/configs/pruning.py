"""Config of experiments/pruning.py (one-shot OBS with M-FAC vs magnitude on the digits MLP). Presets: '', 'smoke'.

    python -m experiments.pruning --config=experiments/configs/pruning.py
      the `mfac_obs_pruning` claim (numbers in experiments/results/mfac_obs_pruning.json).
    python -m experiments.pruning --config=experiments/configs/pruning.py:smoke
      two sparsities, fewer gradients and steps; seconds.
"""

import ml_collections


def get_config(preset: str = ''):
  c = ml_collections.ConfigDict()
  c.record = False          # write experiments/results/<claim>.json (only with a claim's exact config)
  c.seed = 0
  c.hidden = (64,)
  c.train_steps = 1500
  c.batch_size = 64
  c.learning_rate = 3e-3
  c.sparsities = (0.5, 0.8, 0.9, 0.95)
  c.recomputations = 16     # the authors' nrecomps (README example)
  c.num_grads = 64          # the authors' ngrads_schedule (README example)
  c.fisher_batch = 32       # the authors' prun_batchsize
  c.damping = 1e-5          # the authors' prundamp
  c.block_size = 128        # the authors' blocksize (README example); None for the full Fisher
  if preset == 'smoke':
    c.train_steps = 200
    c.sparsities = (0.5, 0.9)
    c.recomputations = 2
    c.num_grads = 16
  elif preset:
    raise ValueError(f'unknown preset {preset!r}; known: smoke')
  return c
