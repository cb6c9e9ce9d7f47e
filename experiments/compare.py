"""The main job: every registered optimizer on the embedded digits problem, side by side.

    python -m experiments.compare                 # digits MLP, every registered optimizer but the 'slow' ones
    python -m experiments.compare --config.optimizers=adam,diffgrad,muon --config.steps=500

Prints a table (final train loss, test accuracy, steps/s, optimizer-state bytes per parameter byte), and writes
``config.json``, ``metrics.jsonl``, ``results.json`` and ``curves.png`` under ``--workdir``.
"""

from absl import app, flags
import jax

from experiments.lib import compare
from experiments.lib.common import script

_CONFIG = script.config_flag('compare')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/compare', 'Where config, metrics, results and plots go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(compare, _CONFIG, _WORKDIR))
