"""Federated learning on the round engine: the method benchmark, Shakespeare by speaker, FedStale, FedAMD, ...

    python -m experiments.federated --config=experiments/configs/federated.py:smoke \
        --config.experiment=benchmark --workdir=/tmp/polyak/federated
    python -m experiments.federated --config=experiments/configs/federated.py \
        --config.experiment=benchmark --config.benchmark.data_dir=../shared/data/mnist

``--config.experiment`` names the sub-experiment (see ``experiments/lib/federated``); its settings are
``--config.<experiment>.*``. Each writes ``config.json``, ``metrics.jsonl``, ``results.json`` and ``table.txt``
under ``--workdir`` and prints its table.
"""

from absl import app, flags
import jax

from experiments.lib import federated
from experiments.lib.common import script

_CONFIG = script.config_flag('federated')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/federated', 'Where config, metrics, results and plots go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(federated, _CONFIG, _WORKDIR))
