"""Registered optimizers on a small character-level transformer (tiny Shakespeare), at equal steps.

    python -m experiments.char_lm --config=experiments/configs/char_lm.py --workdir=/tmp/polyak/char_lm \
        --config.data_dir=../shared/data/tinyshakespeare
    python -m experiments.char_lm --config=experiments/configs/char_lm.py:smoke --config.optimizers=swan,adamw

Prints a table of final train/validation loss (on fixed held-out windows), steps/s and optimizer-state bytes
per parameter byte, and writes ``config.json``, ``metrics.jsonl`` (one row per optimizer, with its curves) and
``curves.png`` under ``--workdir``. Optimizers that need an oracle (Sophia) get it from their registry entry.
"""

from __future__ import annotations

import os

from absl import app, flags
import jax
from ml_collections import config_flags

from experiments.lib import char_lm

_CONFIG = config_flags.DEFINE_config_file('config', os.path.join(os.path.dirname(__file__), 'configs',
                                                                 'char_lm.py'))
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/char_lm', 'Where metrics, config and plots go.')


def main(argv):
  del argv
  rows = char_lm.run(_CONFIG.value, _WORKDIR.value)
  print(char_lm.table(rows))
  print(f'\nwrote {_WORKDIR.value}/metrics.jsonl and curves.png')


if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(main)
