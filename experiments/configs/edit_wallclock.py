"""Config of experiments/edit_wallclock.py (EDiT vs A-EDiT in simulated wall-clock). Presets: '', 'smoke'.

    python -m experiments.edit_wallclock --config=experiments/configs/edit_wallclock.py
      the `a_edit_wallclock` claim (numbers in experiments/results/a_edit_wallclock.json).
"""

import ml_collections


def get_config(preset: str = ''):
  c = ml_collections.ConfigDict()
  c.record = False          # write experiments/results/<claim>.json (only with a claim's exact config)
  c.seed = 0
  c.num_workers = 4
  c.straggler = 2.0         # the last worker's slowdown
  c.jitter = 0.1            # log-normal sigma of every step time
  c.batch_size = 32
  c.inner_lr = 0.1
  c.local_steps = 8         # EDiT's steps per round; A-EDiT syncs every local_steps time units
  c.warmup = 5              # anomaly detector warm-up (rounds)
  c.layers = 12             # the cost model's layers
  c.sync_per_layer = 0.05   # per-layer sync time, in step times
  c.total_time = 400.0
  c.target_loss = 0.35
  if preset == 'smoke':
    c.total_time = 60.0
    c.target_loss = 0.6
  elif preset:
    raise ValueError(f'unknown preset {preset!r}; known: smoke')
  return c
