"""Directional sharpness of SGD's, Adam's and clipped updates along the training of a character transformer
(Pan & Li, 2306.00204), in float64.

    python -m experiments.directional_sharpness --config.data_dir=../shared/data/tinyshakespeare
    python -m experiments.directional_sharpness --config=experiments/configs/directional_sharpness.py:smoke

Prints the headline records (one JSON object a line) and writes ``config.json``, ``results.json``,
``metrics.jsonl`` and the figures under ``--workdir`` (see ``experiments/lib/directional_sharpness.py``).
"""

from absl import app, flags
import jax

from experiments.lib import directional_sharpness
from experiments.lib.common import script

_CONFIG = script.config_flag('directional_sharpness')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/directional_sharpness',
                               'Where config, metrics, results and plots go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(directional_sharpness, _CONFIG, _WORKDIR))
