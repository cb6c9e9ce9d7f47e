"""Optimistic online mirror descent: regret on stochastic, adversarial and SEA sequences; a bilinear game.

    python -m experiments.online --workdir=/tmp/polyak/online
    python -m experiments.online --config=experiments/configs/online.py:smoke

Prints the headline records (one JSON object a line) and writes ``config.json``,
``results.json``, ``metrics.jsonl`` and the figures under ``--workdir`` (see ``experiments/lib/online.py``).
"""

from absl import app, flags
import jax

from experiments.lib import online
from experiments.lib.common import script

_CONFIG = script.config_flag('online')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/online', 'Where config, metrics, results and plots go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(online, _CONFIG, _WORKDIR))
