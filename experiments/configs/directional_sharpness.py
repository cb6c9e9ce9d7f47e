"""Config of experiments/directional_sharpness.py. Presets: '' (full size, the figures), 'smoke'.

    python -m experiments.directional_sharpness --config.data_dir=../shared/data/tinyshakespeare
      18k-parameter transformer, 200 steps: the gradient (SGD's direction) is 5.7x sharper than Adam's update at
      Adam's points (median of 8 probes); clipping the top 1% of its coordinates lowers it 1.35x. 4 min on 2 loaded
      CPU cores. The `directional_sharpness_adam_vs_sgd` claim.
    python -m experiments.directional_sharpness --config=experiments/configs/directional_sharpness.py:smoke
"""

import ml_collections


def get_config(preset: str = ''):
  c = ml_collections.ConfigDict()
  c.record = False          # write experiments/results/<claim>.json (only with a claim's exact config)
  c.seed = 0
  c.data_dir = ''           # folder holding input.txt (tiny Shakespeare); empty = a small embedded text
  # A one-block character transformer (experiments/lib/common/models.CharTransformer), in float64.
  c.d_model = 32
  c.layers = 1
  c.heads = 2
  c.block = 32
  c.batch_size = 16
  c.eval_batch_size = 64    # the fixed batch whose loss Hessian measures the sharpness
  c.steps = 200
  c.probe_every = 25
  c.clip_fraction = 0.01    # optim.coordinate_clip: the top 1% of coordinates clipped
  # Optimizers, each along its own trajectory from the same start and batches; learning rates tuned coarsely
  # (3 values each, 150 steps) on tiny Shakespeare.
  c.optimizers = 'sgd,adam,clipped_sgd'   # the claim needs sgd and adam
  c.sgd_lr = 0.3
  c.momentum = 0.9
  c.adam_lr = 3e-3
  if preset == 'smoke':
    c.d_model, c.heads, c.block, c.batch_size, c.eval_batch_size = 16, 2, 16, 4, 8
    c.steps, c.probe_every, c.optimizers = 6, 3, 'sgd,adam'
  elif preset:
    raise ValueError(f'unknown preset {preset!r}; known: smoke')
  return c
