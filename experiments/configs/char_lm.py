"""Config of the character-level LM comparison (experiments/char_lm.py). Presets: '' (default) and 'smoke'.

    python -m experiments.char_lm --config.data_dir=../shared/data/tinyshakespeare     # the default preset
      112k-parameter transformer, 300 steps each on tiny Shakespeare: validation loss SWAN 2.10, FRUGAL 2.20,
      AdamW 2.25, hybrid AuON 2.25, muon 2.33, AuON 2.36, Sophia-G/H 2.38 (SWAN with no optimizer state).
      2.5 min on 2 CPU cores. The `char_lm_swan` claim.
    python -m experiments.char_lm --config=experiments/configs/char_lm.py:smoke
      12 steps on the embedded text: SWAN 1.73, AdamW 2.77; 1-4 min (compilation dominates: 8 optimizers).

    --config.optimizers=swan,adamw           # any registered names, compared at equal steps
    --config.learning_rates.swan=0.005       # per-optimizer learning rate (others: the registry's default)
    --config.data_dir=../shared/data/tinyshakespeare   # folder with input.txt; empty = a small embedded text
"""

import ml_collections


def get_config(preset: str = ''):
  c = ml_collections.ConfigDict()
  c.record = False          # write experiments/results/<claim>.json (only with a claim's exact config)
  c.optimizers = 'swan,auon,hybrid_auon,frugal,sophia_g,sophia_h,adamw,muon'  # registry names
  c.data_dir = ''           # folder holding input.txt (tiny Shakespeare); empty = the embedded text
  c.steps = 300
  c.batch_size = 32
  c.block = 64              # context length in characters
  c.d_model = 64
  c.layers = 2
  c.heads = 4
  c.seed = 0
  c.log_every = 50          # progress line every N steps
  c.eval_every = 50         # train/val loss on fixed held-out windows every N steps (and at the end)
  c.eval_batches = 4        # eval windows: eval_batches x batch_size, the same for every optimizer
  # Learning rates for this model: the best of 2-3 values each on tiny Shakespeare at the default size (150
  # steps). An optimizer missing here runs with its registry default; override with
  # --config.learning_rates.<name>=...
  c.learning_rates = ml_collections.ConfigDict({
      'swan': 1e-2, 'auon': 0.05, 'hybrid_auon': 0.05, 'frugal': 3e-3, 'adamw': 3e-3, 'muon': 0.02,
      'sophia_g': 1e-3, 'sophia_h': 1e-3})
  if preset == 'smoke':
    c.steps, c.batch_size, c.block, c.d_model, c.layers = 12, 8, 32, 32, 1
    c.log_every, c.eval_every, c.eval_batches = 6, 6, 1
  elif preset:
    raise ValueError(f'unknown preset {preset!r}; known: smoke')
  return c
