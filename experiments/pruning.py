"""One-shot pruning of the digits MLP: OBS with M-FAC's static inverse Fisher against magnitude pruning.

    python -m experiments.pruning --workdir=/tmp/polyak/pruning
    python -m experiments.pruning --config=experiments/configs/pruning.py:smoke

Prints test accuracy per sparsity for both pruners and writes ``config.json``, ``metrics.jsonl``,
``results.json`` and ``pruning.png`` under ``--workdir`` (see ``experiments/lib/pruning.py``).
"""

from absl import app, flags
import jax

from experiments.lib import pruning
from experiments.lib.common import script

_CONFIG = script.config_flag('pruning')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/pruning', 'Where config, metrics, results and plots go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(pruning, _CONFIG, _WORKDIR))
