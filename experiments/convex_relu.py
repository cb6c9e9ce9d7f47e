"""Convex training of two-layer ReLU networks: ADMM, a certified global optimum against non-convex GD, and convex
adversarial training (Bai, Gautam & Sojoudi, 2201.01965).

    python -m experiments.convex_relu --workdir=/tmp/polyak/convex_relu
    python -m experiments.convex_relu --config=experiments/configs/convex_relu.py:smoke

Prints the headline records and writes ``config.json``, ``results.json``, ``metrics.jsonl`` and the figures under
``--workdir`` (see ``experiments/lib/convex_relu.py``).
"""

from absl import app, flags
import jax

from experiments.lib import convex_relu
from experiments.lib.common import script

_CONFIG = script.config_flag('convex_relu')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/convex_relu', 'Where config, metrics, results and plots go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(convex_relu, _CONFIG, _WORKDIR))
