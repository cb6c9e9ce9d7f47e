"""SAF and MESA (sharpness-aware training for free) against plain SGD and SAM on a digits MLP.

    python -m experiments.sharpness --workdir=/tmp/polyak/sharpness
    python -m experiments.sharpness --config=experiments/configs/sharpness.py:smoke

Prints, per method, the top Hessian eigenvalue, the ascent sharpness, test accuracy and the cost of a step, and
writes ``config.json``, ``results.json``, ``metrics.jsonl`` and ``sharpness.png`` under ``--workdir`` (see
``experiments/lib/sharpness.py``).
"""

from absl import app, flags
import jax

from experiments.lib import sharpness
from experiments.lib.common import script

_CONFIG = script.config_flag('sharpness')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/sharpness', 'Where config, metrics, results and plots go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(sharpness, _CONFIG, _WORKDIR))
