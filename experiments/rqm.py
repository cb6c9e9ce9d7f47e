"""Privacy-utility of RQM against the Poisson binomial mechanism: epsilon (dp_accounting) against exact variance.

    python -m experiments.rqm --workdir=/tmp/polyak/rqm
    python -m experiments.rqm --config=experiments/configs/rqm.py:smoke

Prints epsilon and variance per mechanism and parameter and writes ``config.json``, ``metrics.jsonl``,
``results.json`` and ``frontier.png`` under ``--workdir`` (see ``experiments/lib/rqm.py``).
"""

from absl import app, flags
import jax

from experiments.lib import rqm
from experiments.lib.common import script

_CONFIG = script.config_flag('rqm')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/rqm', 'Where config, metrics, results and plots go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(rqm, _CONFIG, _WORKDIR))
