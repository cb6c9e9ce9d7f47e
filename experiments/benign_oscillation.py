"""Benign oscillation: SGD with a large learning rate learns the weak feature, with a small one it does not
(Lu, Wu, Yang & Zou, 2310.17074), exact in float64.

    python -m experiments.benign_oscillation --workdir=/tmp/polyak/oscillation
    python -m experiments.benign_oscillation --config=experiments/configs/benign_oscillation.py:smoke

Prints the headline records (one JSON object a line) and writes ``config.json``, ``results.json``,
``metrics.jsonl`` and the figures under ``--workdir`` (see ``experiments/lib/benign_oscillation.py``).
"""

from absl import app, flags
import jax

from experiments.lib import benign_oscillation
from experiments.lib.common import script

_CONFIG = script.config_flag('benign_oscillation')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/oscillation', 'Where config, metrics, results and plots go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(benign_oscillation, _CONFIG, _WORKDIR))
