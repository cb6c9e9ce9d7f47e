"""Config of experiments/sgd_noise.py. Presets: '' (full, the claims with --config.data_dir=../shared/data/mnist),
'smoke'.

    python -m experiments.sgd_noise --config=experiments/configs/sgd_noise.py --config.data_dir=../shared/data/mnist
      the `sgd_noise_phase_diagram`, `sgd_noise_tc_power_law` and `sgd_noise_perceptron` claims (numbers in
      REPRODUCTIONS.md).
    python -m experiments.sgd_noise --config=experiments/configs/sgd_noise.py:smoke
      digits, one alpha at two temperatures, two sizes, a small perceptron; seconds.
"""

import ml_collections


def get_config(preset: str = ''):
  c = ml_collections.ConfigDict()
  c.record = False          # write experiments/results/<claim>.json (only with a claim's exact config)
  c.data_dir = ''           # MNIST IDX folder (../shared/data/mnist); '' = scikit-learn's digits
  c.num_test = 2000
  c.width = 64              # hidden width of the 2-hidden-layer ReLU MLP
  c.depth = 2
  c.batch = 16
  c.max_steps = 20_000      # per run; a run that has not reached zero hinge loss by then is marked unconverged
  c.seeds = 1
  c.phase_size = 512        # P of the phase diagram
  c.alphas = (0.1, 1.0, 10.0, 100.0)
  c.temperatures = (0.03, 0.1, 0.3, 1.0)
  c.tc_alpha = 10.0         # the lazy side, where T_c is read
  c.tc_sizes = (128, 256, 512, 1024)
  c.tc_temperatures = (0.03, 0.1, 0.3, 1.0)
  c.tc_factor = 2.0         # T_c: where the weight change reaches tc_factor x its value at the smallest T
  c.perceptron = ml_collections.ConfigDict(dict(
      d=256, sizes=(64, 128, 256, 512), chis=(0.0, 1.0), temperatures=(0.03, 0.1, 0.3, 1.0, 3.0, 10.0), seeds=2,
      batch=8, max_steps=200_000))
  if preset == 'smoke':
    c.num_test = 200
    c.width = 16
    c.max_steps = 2000
    c.phase_size = 64
    c.alphas = (10.0,)
    c.temperatures = (0.03, 0.3)
    c.tc_sizes = (32, 64)
    c.tc_temperatures = (0.03, 0.3)
    c.perceptron = ml_collections.ConfigDict(dict(
        d=32, sizes=(16, 32), chis=(0.0,), temperatures=(0.1, 1.0, 10.0), seeds=1, batch=4, max_steps=20_000))
  elif preset:
    raise ValueError(f'unknown preset {preset!r}; known: smoke')
  return c
