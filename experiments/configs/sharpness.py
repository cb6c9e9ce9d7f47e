"""Config of experiments/sharpness.py (SAF / MESA / SAM / plain SGD on a digits MLP). Presets: '' (full), 'smoke'.

    python -m experiments.sharpness --config=experiments/configs/sharpness.py --workdir=/tmp/polyak/sharpness
      4 methods x 5 seeds, 60 epochs of digits; the `saf_sharpness` claim (numbers in
      experiments/results/saf_sharpness.json).
    python -m experiments.sharpness --config=experiments/configs/sharpness.py:mnist
      the same on the 10,000 MNIST images of ../shared/data/mnist (run from the repository root), 3 seeds, 30
      epochs; the `saf_sharpness_mnist` claim.
    python -m experiments.sharpness --config=experiments/configs/sharpness.py:smoke
      1 seed, 8 epochs; seconds.

Defaults follow the authors' ImageNet commands (AngusDujw/SAF ``run.sh``): SAF weight 0.3, memory 2 epochs, MESA
weight 0.8, temperature 5, start after epoch 5. MESA's EMA decay is 0.99 a step instead of the code's 0.9998: a
digits epoch is 22 steps, so 0.9998 would keep the teacher at the initial weights for the whole run.
"""

import ml_collections


def get_config(preset: str = ''):
  c = ml_collections.ConfigDict()
  c.record = False          # write experiments/results/<claim>.json (only with a claim's exact config)
  c.data_dir = ''           # empty: the embedded digits; else a folder of MNIST IDX files
  c.methods = ('sgd', 'saf', 'mesa', 'sam')
  c.seeds = (0, 1, 2, 3, 4)
  c.hidden = (64,)
  c.epochs = 60
  c.batch_size = 64
  c.learning_rate = 0.05
  c.momentum = 0.9
  c.saf_weight = 0.3
  c.memory_epochs = 2
  c.mesa_weight = 0.8
  c.mesa_decay = 0.99
  c.temperature = 5.0
  c.start_epoch = 5
  c.end_epoch = 10_000
  c.sam_rho = 0.05
  c.eval_examples = 1024    # training examples the sharpness is measured on
  c.power_iters = 50
  c.sharpness_rho = 0.05
  if preset == 'smoke':
    c.seeds = (0,)
    c.hidden = (32,)
    c.epochs = 8
    c.start_epoch = 2
    c.eval_examples = 256
    c.power_iters = 10
  elif preset == 'mnist':   # the 10,000 images of ../shared/data/mnist: 8,000 to train (125 steps an epoch)
    c.data_dir = '../shared/data/mnist'
    c.seeds = (0, 1, 2)
    c.epochs = 30
    c.mesa_decay = 0.998    # ~4 epochs of memory, as 0.99 is on digits
  elif preset:
    raise ValueError(f'unknown preset {preset!r}; known: smoke, mnist')
  return c
