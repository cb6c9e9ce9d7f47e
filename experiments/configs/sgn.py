"""Config of experiments/sgn.py (Small-Gain Nash certificates). Presets: '' (full, the paper's grids), 'smoke'.

    python -m experiments.sgn --config=experiments/configs/sgn.py --workdir=/tmp/polyak/sgn
      Markov band r in [0.133, 7.54] with alpha* = 0.333 at r = 0.98 (paper: ~0.13-7, ~0.33 at r ~ 1); NPG
      converges up to 4.8x the certified eta_max; mini-toy alpha* = 0.2929; the LQ certificate fails at
      lambda = 1.417 (closed form 1.414). 1.6 min on 2 CPU cores. The `sgn_markov_band` claim.
    python -m experiments.sgn --config=experiments/configs/sgn.py:smoke
      the same Markov band and mini-toy margin (they do not depend on the grids); 30 s.
"""

import ml_collections


def get_config(preset: str = ''):
  c = ml_collections.ConfigDict()
  c.record = False          # write experiments/results/<claim>.json (only with a claim's exact config)
  c.lq_dim = 64                 # the LQ game's dimension (two players of lq_dim / 2)
  c.lq_a, c.lq_b = 10.0, 0.05   # couplings A_12 = lambda a R, A_21 = lambda b R^T
  c.lq_seed = 12345
  c.num_lambdas = 61            # lambda in [0, 2.5]
  c.band_lambda = 1.0
  c.num_ratios = 161            # r in [0.1, 1e4]
  c.phase_lambdas = 16          # couplings simulated in the phase diagrams
  c.phase_steps = 800
  c.phase_pairs = 16
  c.random_games = 30
  c.markov_seeds = 20
  c.markov_steps = 2000
  c.markov_multipliers = 20
  if preset == 'smoke':
    c.lq_dim = 16
    c.num_lambdas = 11
    c.num_ratios = 41
    c.phase_lambdas = 4
    c.phase_steps = 100
    c.phase_pairs = 4
    c.random_games = 3
    c.markov_seeds = 3
    c.markov_steps = 1500
    c.markov_multipliers = 5
  elif preset:
    raise ValueError(f'unknown preset {preset!r}; known: smoke')
  return c
