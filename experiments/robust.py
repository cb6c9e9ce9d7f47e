"""Every attack against every robust rule (and MoNNA), worst-case accuracy over attacks.

    python -m experiments.robust --config=experiments/configs/robust.py:smoke --workdir=/tmp/polyak/robust
    python -m experiments.robust --config=experiments/configs/robust.py --config.data_dir=../shared/data/mnist

Writes ``metrics.jsonl`` (one line per run), ``config.json``, ``table.txt`` and ``heatmap.png`` under ``--workdir``
and prints the worst-case table.
"""

from __future__ import annotations

import os

from absl import app, flags
import jax
from ml_collections import config_flags

from experiments.lib import robust

_CONFIG = config_flags.DEFINE_config_file('config', os.path.join(os.path.dirname(__file__), 'configs', 'robust.py'))
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/robust', 'Where metrics, config, table and heatmap go.')


def main(argv):
  del argv
  results = robust.run(_CONFIG.value, _WORKDIR.value)
  print(robust.table(results))
  print(f'\nwrote {_WORKDIR.value}/metrics.jsonl, table.txt and heatmap.png')


if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(main)
