"""Asynchronous and straggler-tolerant training on the event simulator: async FL, sequential gradient coding.

    python -m experiments.asynchronous --config.experiment=async_fl --workdir=/tmp/polyak/async_fl
    python -m experiments.asynchronous --config.experiment=gradient_coding --workdir=/tmp/polyak/sgc
    python -m experiments.asynchronous --config=experiments/configs/asynchronous.py:smoke

``--config.experiment`` names the sub-experiment (async_fl, gradient_coding: see ``experiments/lib/asynchronous``);
its settings are ``--config.<experiment>.*``. Each writes ``config.json``, ``metrics.jsonl``, ``results.json`` and
``table.txt`` under ``--workdir`` and prints its table.
"""

from absl import app, flags
import jax

from experiments.lib import asynchronous
from experiments.lib.common import script

_CONFIG = script.config_flag('asynchronous')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/asynchronous', 'Where config, metrics, results and tables go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(asynchronous, _CONFIG, _WORKDIR))
