"""Communication-efficient distributed training: EF/EF21/EF21-W, DGC, compressors, DiLoCo and friends.

    python -m experiments.communication --config=experiments/configs/communication.py:smoke \
        --config.experiment=ef21 --workdir=/tmp/polyak/ef21
    python -m experiments.communication --config=experiments/configs/communication.py \
        --config.experiment=dgc --config.dgc.data_dir=../shared/data/mnist --workdir=/tmp/polyak/dgc

``--config.experiment`` names the sub-experiment (see ``experiments/lib/communication.py``); its settings live in
``--config.<experiment>.*``. Each writes ``config.json``, ``metrics.jsonl``, ``summary.json``, ``table.txt`` and
a PNG plot under ``--workdir`` and prints its summary table.
"""

from __future__ import annotations

import os

from absl import app, flags
import jax
from ml_collections import config_flags

from experiments.lib import communication

_CONFIG = config_flags.DEFINE_config_file(
    'config', os.path.join(os.path.dirname(__file__), 'configs', 'communication.py'))
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/communication', 'Where metrics, config, table and plots go.')


def main(argv):
  del argv
  _, text = communication.run(_CONFIG.value, _WORKDIR.value)
  print(text)
  print(f'\nwrote {_WORKDIR.value}/metrics.jsonl, summary.json, table.txt')


if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(main)
