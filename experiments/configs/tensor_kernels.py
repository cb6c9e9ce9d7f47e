"""Config of experiments/tensor_kernels.py. Presets: '' (full, the claims), 'smoke'.

    python -m experiments.tensor_kernels --config=experiments/configs/tensor_kernels.py
      the `tensor_kernels_width_rate` and `tensor_kernels_rmt` claims (numbers in REPRODUCTIONS.md).
    python -m experiments.tensor_kernels --config=experiments/configs/tensor_kernels.py:smoke
      one MLP at three small widths and small matrices; seconds.
"""

import ml_collections


def get_config(preset: str = ''):
  c = ml_collections.ConfigDict()
  c.record = False          # write experiments/results/<claim>.json (only with a claim's exact config)
  c.architectures = 'mlp_relu,cnn_relu,rnn_erf'   # see theory.kernels.architecture
  c.widths = (32, 64, 128, 256, 512)
  c.seeds = 12
  c.num_inputs = 5
  c.rmt_sizes = (100, 200, 400, 800, 1600)
  c.rmt_ratio = 0.25        # n / m of the Wishart matrices
  c.rmt_seeds = 3
  if preset == 'smoke':
    c.architectures = 'mlp_erf'
    c.widths = (16, 32, 64)
    c.seeds = 2
    c.num_inputs = 3
    c.rmt_sizes = (50, 100)
    c.rmt_seeds = 1
  elif preset:
    raise ValueError(f'unknown preset {preset!r}; known: smoke')
  return c
