"""Consensus-based optimization: Rastrigin in d = 10 against CBXpy, and the consensus drift against -grad f.

    python -m experiments.cbo --workdir=/tmp/polyak/cbo
    python -m experiments.cbo --config=experiments/configs/cbo.py:smoke

Prints the headline records (one JSON object a line) and writes ``config.json``,
``results.json``, ``metrics.jsonl`` and the figures under ``--workdir`` (see ``experiments/lib/cbo.py``).
"""

from absl import app, flags
import jax

from experiments.lib import cbo
from experiments.lib.common import script

_CONFIG = script.config_flag('cbo')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/cbo', 'Where config, metrics, results and plots go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(cbo, _CONFIG, _WORKDIR))
