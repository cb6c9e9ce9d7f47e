"""SGD-noise regimes (Sclocchi, Geiger & Wyart, 2301.13703): the (alpha, T) phase diagram of test error on
even-vs-odd digits, the crossover temperature T_c against the training-set size P, and the perceptron model.

    python -m experiments.sgd_noise --config.data_dir=../shared/data/mnist --workdir=/tmp/polyak/sgd_noise
    python -m experiments.sgd_noise --config=experiments/configs/sgd_noise.py:smoke

Prints the headline records (one JSON object a line) and writes ``config.json``, ``results.json``,
``metrics.jsonl`` and the figures under ``--workdir`` (see ``experiments/lib/sgd_noise.py``).
"""

from absl import app, flags
import jax

from experiments.lib import sgd_noise
from experiments.lib.common import script

_CONFIG = script.config_flag('sgd_noise')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/sgd_noise', 'Where config, metrics, results and plots go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(sgd_noise, _CONFIG, _WORKDIR))
