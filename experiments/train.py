"""Trains any registered optimizer, with checkpoints and exact resume.

    python -m experiments.train --config=experiments/configs/train.py:diffgrad \
        --config.optimizer.learning_rate=1e-3 --config.data_dir=../shared/data/mnist --workdir=/tmp/run

Rerunning with the same ``--workdir`` resumes from the latest orbax checkpoint.
"""

from __future__ import annotations

import os

from absl import app, flags
import jax
from ml_collections import config_flags

from experiments.lib import trainer

_CONFIG = config_flags.DEFINE_config_file('config', os.path.join(os.path.dirname(__file__), 'configs', 'train.py'))
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/train', 'Checkpoints, config.json and metrics.jsonl.')


def main(argv):
  del argv
  trainer.train(_CONFIG.value, _WORKDIR.value)


if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(main)
