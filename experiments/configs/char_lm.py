"""Config of the character-level LM comparison (experiments/char_lm.py). Presets: '' (default) and 'smoke'.

    --config.optimizers=swan,adamw           # any registered names, compared at equal steps
    --config.learning_rates.swan=0.005       # per-optimizer learning rate (others: the registry's default)
    --config.data_dir=../shared/data/tinyshakespeare   # folder with input.txt; empty = a small embedded text
"""

import ml_collections

# Used when --config.optimizers is empty; names not registered (e.g. Sophia before it lands) are skipped.
DEFAULT_OPTIMIZERS = ('swan', 'auon', 'hybrid_auon', 'frugal', 'sophia_g', 'sophia_h', 'adamw', 'muon')


def get_config(preset: str = ''):
  c = ml_collections.ConfigDict()
  c.optimizers = ''         # comma-separated registry names; empty = DEFAULT_OPTIMIZERS that are registered
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
