"""Langevin dynamics with iterate averaging on tensor PCA and single-index models (Wei, Damian & Lee, 2603.06028).

    python -m experiments.langevin_averaging --workdir=/tmp/polyak/langevin
    python -m experiments.langevin_averaging --config=experiments/configs/langevin_averaging.py:smoke

Prints the headline records (one JSON object a line) and writes ``config.json``, ``results.json``,
``metrics.jsonl`` and the figures under ``--workdir`` (see ``experiments/lib/langevin_averaging.py``).
"""

from absl import app, flags
import jax

from experiments.lib import langevin_averaging
from experiments.lib.common import script

_CONFIG = script.config_flag('langevin_averaging')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/langevin', 'Where config, metrics, results and plots go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(langevin_averaging, _CONFIG, _WORKDIR))
