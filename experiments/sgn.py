"""Small-Gain Nash certificates: the paper's mini-toy, its 64-d LQ game and the entropy-regularised Markov game.

    python -m experiments.sgn --workdir=/tmp/polyak/sgn
    python -m experiments.sgn --config=experiments/configs/sgn.py:smoke

Prints the headline records (one JSON object a line, next to the paper's numbers) and writes ``config.json``,
``results.json``, ``metrics.jsonl`` and the figures under ``--workdir`` (see ``experiments/lib/sgn.py``).
"""

from absl import app, flags
import jax

from experiments.lib import sgn
from experiments.lib.common import script

_CONFIG = script.config_flag('sgn')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/sgn', 'Where config, metrics, results and plots go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(sgn, _CONFIG, _WORKDIR))
