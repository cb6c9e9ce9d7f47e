"""Learning rates as a function of batch size: Marchenko-Pastur batch Hessians and the linear (SGD) and square-root
(Adam) rules against a measured sweep (Granziol, Zohren & Roberts, 2006.09092).

    python -m experiments.batch_size_lr --workdir=/tmp/polyak/batch_size_lr
    python -m experiments.batch_size_lr --config=experiments/configs/batch_size_lr.py:smoke

Prints the headline records and writes ``config.json``, ``results.json``, ``metrics.jsonl`` and the figures under
``--workdir`` (see ``experiments/lib/batch_size_lr.py``).
"""

from absl import app, flags
import jax

from experiments.lib import batch_size_lr
from experiments.lib.common import script

_CONFIG = script.config_flag('batch_size_lr')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/batch_size_lr', 'Where config, metrics, results and plots go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(batch_size_lr, _CONFIG, _WORKDIR))
