"""Differential privacy on digits: DP-SGD vs DiceSGD at equal epsilon, the Bayesian audit, the f-DP limits.

    python -m experiments.privacy --workdir=/tmp/polyak/privacy
    python -m experiments.privacy --config=experiments/configs/privacy.py:smoke

Prints the headline records (one JSON object a line) and writes ``config.json``, ``results.json``,
``metrics.jsonl`` and the figures under ``--workdir`` (see ``experiments/lib/privacy.py``).
"""

from absl import app, flags
import jax

from experiments.lib import privacy
from experiments.lib.common import script

_CONFIG = script.config_flag('privacy')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/privacy', 'Where config, metrics, results and plots go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(privacy, _CONFIG, _WORKDIR))
