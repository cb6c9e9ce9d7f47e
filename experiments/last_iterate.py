"""Last-iterate rates of stochastic (mirror) gradient methods on closed-form problems (Liu & Zhou, 2312.08531).

    python -m experiments.last_iterate --workdir=/tmp/polyak/last_iterate
    python -m experiments.last_iterate --config=experiments/configs/last_iterate.py:smoke

Prints the headline records (one JSON object a line) and writes ``config.json``, ``results.json``,
``metrics.jsonl`` and ``rates.png`` under ``--workdir`` (see ``experiments/lib/last_iterate.py``).
"""

from absl import app, flags
import jax

from experiments.lib import last_iterate
from experiments.lib.common import script

_CONFIG = script.config_flag('last_iterate')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/last_iterate', 'Where config, metrics, results and plots go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(last_iterate, _CONFIG, _WORKDIR))
