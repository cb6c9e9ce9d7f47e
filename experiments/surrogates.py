"""SSO (target-based surrogates) against SGD: expensive oracle calls to reach a loss on digits.

    python -m experiments.surrogates --workdir=/tmp/polyak/surrogates
    python -m experiments.surrogates --config=experiments/configs/surrogates.py:smoke

Prints, per method, its best step size, final loss and the oracle calls it needs to reach SGD's final loss, and
writes ``config.json``, ``results.json``, ``metrics.jsonl`` and ``surrogates.png`` under ``--workdir`` (see
``experiments/lib/surrogates.py``).
"""

from absl import app, flags
import jax

from experiments.lib import surrogates
from experiments.lib.common import script

_CONFIG = script.config_flag('surrogates')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/surrogates', 'Where config, metrics, results and plots go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(surrogates, _CONFIG, _WORKDIR))
