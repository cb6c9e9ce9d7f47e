"""Registered optimizers on a small character-level transformer (tiny Shakespeare), at equal steps.

    python -m experiments.char_lm --config=experiments/configs/char_lm.py \
        --config.data_dir=../shared/data/tinyshakespeare --workdir=/tmp/polyak/char_lm
    python -m experiments.char_lm --config=experiments/configs/char_lm.py:smoke --config.optimizers=swan,adamw

Prints a table of final train/validation loss (on fixed held-out windows), steps/s and optimizer-state bytes per
parameter byte, and writes ``config.json``, ``metrics.jsonl`` (one row per optimizer, with its curves),
``results.json`` and ``curves.png`` under ``--workdir``. Optimizers that need an oracle (Sophia) get it from
their registry entry.
"""

from absl import app, flags
import jax

from experiments.lib import char_lm
from experiments.lib.common import script

_CONFIG = script.config_flag('char_lm')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/char_lm', 'Where config, metrics, results and plots go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(char_lm, _CONFIG, _WORKDIR))
