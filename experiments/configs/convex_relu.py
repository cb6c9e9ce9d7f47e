"""Config of experiments/convex_relu.py. Presets: '' (full), 'smoke'.

    python -m experiments.convex_relu --config=experiments/configs/convex_relu.py --workdir=/tmp/polyak/convex_relu
      the `convex_relu_global_optimum` and `convex_relu_adversarial` claims; about 2 min on 2 loaded CPU cores.
    python -m experiments.convex_relu --config=experiments/configs/convex_relu.py:smoke
"""

import ml_collections


def get_config(preset: str = ''):
  c = ml_collections.ConfigDict()
  c.record = False
  c.seed = 0
  # Certified global optimum (every pattern of n points in the plane) against non-convex GD.
  c.n = 12
  c.beta = 0.1
  c.rho = 0.3
  c.admm_iterations = 6000
  c.num_gates = 12          # sampled gates for the approximate program and the gated-ReLU variant
  c.num_inits = 10
  c.gd_steps = 20000
  c.gd_learning_rate = 0.01
  # Convex adversarial training (hinge loss, l_inf).
  c.adv_n = 40
  c.adv_test = 200
  c.adv_gates = 20
  c.eps_train = (0.0, 0.05, 0.1)
  c.eps_attack = (0.0, 0.05, 0.1)
  if preset == 'smoke':
    c.n = 6
    c.admm_iterations = 300
    c.num_inits = 2
    c.gd_steps = 300
    c.adv_n = 12
    c.adv_test = 30
    c.adv_gates = 4
    c.eps_train = (0.0, 0.1)
    c.eps_attack = (0.0, 0.1)
  elif preset:
    raise ValueError(f'unknown preset {preset!r}; known: smoke')
  return c
