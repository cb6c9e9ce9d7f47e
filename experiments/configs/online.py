"""Config of experiments/online.py (optimistic online mirror descent). Presets: '' (full), 'smoke'.

    python -m experiments.online --config=experiments/configs/online.py --workdir=/tmp/polyak/online
      regret of optimistic vs plain OMD on linear SEA sequences (d=10, unit ball) over noise s and flip period k,
      T in {500, 2000, 8000}, 3 seeds; the bilinear game for 3000 rounds. The `oomd_sea_regret` and
      `oomd_bilinear_game` claims.
    python -m experiments.online --config=experiments/configs/online.py:smoke
      two horizons, one seed, 500 game rounds: seconds.
"""

import ml_collections


def get_config(preset: str = ''):
  c = ml_collections.ConfigDict()
  c.record = False          # write experiments/results/<claim>.json (only with a claim's exact config)
  c.seed = 0
  c.dim = 10
  # (noise s, flip period k; 0 = never): the quiet case, stochastic, adversarial, predictable adversarial, SEA.
  c.cases = ((0.0, 0), (0.1, 0), (1.0, 0), (0.0, 1), (0.0, 10), (0.3, 1), (0.3, 10))
  c.horizons = (500, 2000, 8000)
  c.seeds = 3
  c.game_step = 0.1
  c.game_rounds = 3000
  if preset == 'smoke':
    c.horizons = (200, 800)
    c.seeds = 1
    c.game_rounds = 500
  elif preset:
    raise ValueError(f'unknown preset {preset!r}; known: smoke')
  return c
