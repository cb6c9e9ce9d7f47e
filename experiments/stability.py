"""Linear stability of SGD: the exact threshold eta*(B), tr(H) <= 2/eta (B = 1) against lambda_max <= 2/eta (GD),
and the minima GD and SGD reach on diagonal linear and two-layer ReLU networks (Wu & Su, 2305.17490).

    python -m experiments.stability --workdir=/tmp/polyak/stability
    python -m experiments.stability --config=experiments/configs/stability.py:smoke

Prints the headline records (one JSON object a line) and writes ``config.json``, ``results.json``,
``metrics.jsonl`` and the figures under ``--workdir`` (see ``experiments/lib/stability.py``).
"""

from absl import app, flags
import jax

from experiments.lib import stability
from experiments.lib.common import script

_CONFIG = script.config_flag('stability')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/stability', 'Where config, metrics, results and plots go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(stability, _CONFIG, _WORKDIR))
