"""Trains any registered optimizer, with checkpoints and exact resume.

    python -m experiments.train --config=experiments/configs/train.py:diffgrad \
        --config.optimizer.learning_rate=1e-3 --config.data_dir=../shared/data/mnist --workdir=/tmp/polyak/train

Rerunning with the same ``--workdir`` resumes from the latest orbax checkpoint (replaying the steps after it) and
ends with the same parameters, bit for bit, as an uninterrupted run. Writes ``config.json``, ``metrics.jsonl``,
``results.json`` and ``checkpoints/`` under ``--workdir``.
"""

from absl import app, flags
import jax
from ml_collections import config_flags

from experiments.lib import train
from experiments.lib.common import script

_CONFIG = config_flags.DEFINE_config_file('config', script.config_path('train'))
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/train', 'Checkpoints, config, metrics and results.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(train, _CONFIG, _WORKDIR))
