"""The main job: every registered optimizer on the embedded digits problem, side by side.

    python -m experiments.compare                 # digits MLP, every registered optimizer
    python -m experiments.compare --config.optimizers=adam,diffgrad --config.steps=500

Prints a table (final train loss, test accuracy, steps/s, optimizer-state bytes per parameter byte), and writes
``metrics.jsonl``, ``config.json`` and ``curves.png`` under ``--workdir`` (``/tmp/polyak/compare`` by default).
"""

from __future__ import annotations

import os

from absl import app, flags
import jax
from ml_collections import config_flags

from experiments.lib import comparison

_CONFIG = config_flags.DEFINE_config_file('config', os.path.join(os.path.dirname(__file__), 'configs',
                                                                 'compare.py'))
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/compare', 'Where metrics, config and plots go.')


def main(argv):
  del argv
  rows = comparison.run(_CONFIG.value, _WORKDIR.value)
  print(comparison.table(rows))
  print(f'\nwrote {_WORKDIR.value}/metrics.jsonl and curves.png')


if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(main)
