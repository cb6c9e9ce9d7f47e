"""Config of experiments/surrogates.py (SSO against SGD per expensive oracle call). Presets: '' (full), 'smoke'.

    python -m experiments.surrogates --config=experiments/configs/surrogates.py --workdir=/tmp/polyak/surrogates
      digits softmax regression, batches of 128, 60 oracle calls, SSO m in {1, 5, 20}; the `sso_oracle_calls`
      claim (numbers in experiments/results/sso_oracle_calls.json).
    python -m experiments.surrogates --config=experiments/configs/surrogates.py:smoke
      a shorter budget and smaller grids; seconds.

``hidden=()`` is softmax regression (the paper's convex case); ``hidden=(32,)`` an MLP whose logits are the
targets. The inner line search follows the authors' LSOpt (c = 0.1, beta = 0.9, expansion 2), from optax's
backtracking line search, with decrease 0.5 so that it reaches the surrogate's scale in a few trials.
"""

import ml_collections


def get_config(preset: str = ''):
  c = ml_collections.ConfigDict()
  c.record = False          # write experiments/results/<claim>.json (only with a claim's exact config)
  c.data_dir = ''           # empty: the embedded digits; else a folder of MNIST IDX files
  c.seed = 0
  c.train_examples = 100_000
  c.hidden = ()
  c.batch_size = 128
  c.oracle_calls = 60
  c.sgd_steps = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)    # SGD learning rates
  c.inner_steps = (1, 5, 20)                        # SSO's m
  c.sso_target_steps = (2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 256.0)  # eta / batch_size: a logit step per example
  c.max_backtracking_steps = 30
  c.armijo_c = 0.1
  c.armijo_beta = 0.5
  c.armijo_expand = 2.0
  c.armijo_max_step = 1.0
  if preset == 'smoke':
    c.oracle_calls = 10
    c.sgd_steps = (1.0, 4.0)
    c.inner_steps = (1, 5)
    c.sso_target_steps = (1.0, 4.0)
  elif preset:
    raise ValueError(f'unknown preset {preset!r}; known: smoke')
  return c
