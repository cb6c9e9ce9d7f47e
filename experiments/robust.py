"""Every attack against every robust rule (and MoNNA), worst-case accuracy over attacks.

    python -m experiments.robust --config=experiments/configs/robust.py:smoke --workdir=/tmp/polyak/robust
    python -m experiments.robust --config=experiments/configs/robust.py --config.data_dir=../shared/data/mnist

Writes ``config.json``, ``metrics.jsonl`` (one line per run), ``results.json``, ``table.txt`` and ``heatmap.png``
under ``--workdir`` and prints the worst-case table.
"""

from absl import app, flags
import jax

from experiments.lib import robust
from experiments.lib.common import script

_CONFIG = script.config_flag('robust')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/robust', 'Where config, metrics, results and plots go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(robust, _CONFIG, _WORKDIR))
