"""Communication-efficient distributed training: EF/EF21/EF21-W, DGC, compressors, DiLoCo and friends.

    python -m experiments.communication --config=experiments/configs/communication.py:smoke \
        --config.experiment=ef21 --workdir=/tmp/polyak/ef21
    python -m experiments.communication --config=experiments/configs/communication.py \
        --config.experiment=dgc --config.dgc.data_dir=../shared/data/mnist --workdir=/tmp/polyak/dgc

``--config.experiment`` names the sub-experiment (ef21, dgc, compressors, diloco: see
``experiments/lib/communication``); its settings are ``--config.<experiment>.*``. Each writes ``config.json``,
``metrics.jsonl``, ``results.json``, ``table.txt`` and a PNG plot under ``--workdir`` and prints its table.
"""

from absl import app, flags
import jax

from experiments.lib import communication
from experiments.lib.common import script

_CONFIG = script.config_flag('communication')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/communication', 'Where config, metrics, results and plots go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(communication, _CONFIG, _WORKDIR))
