"""Trains any registered optimizer, with checkpoints and exact resume.

    python -m experiments.train --config=experiments/configs/train.py:diffgrad \
        --config.optimizer.learning_rate=1e-3 --config.data_dir=../shared/data/mnist --workdir=/tmp/polyak/train

Rerunning with the same ``--workdir`` resumes from the latest orbax checkpoint (replaying the steps after it) and
ends with the same parameters, bit for bit, as an uninterrupted run; Ctrl-C (even during a checkpoint save) keeps
the workdir resumable, and a finished workdir says so instead of evaluating again. Writes ``config.json``,
``metrics.jsonl``, ``results.json``, ``loss.png`` and ``checkpoints/`` under ``--workdir``. ``--verbosity=0`` shows
absl's INFO log (orbax's checkpoint lines).
"""

from absl import app, flags
import jax

from experiments.lib import train
from experiments.lib.common import script

_CONFIG = script.config_flag('train')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/train', 'Checkpoints, config, metrics and results.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(train, _CONFIG, _WORKDIR))
