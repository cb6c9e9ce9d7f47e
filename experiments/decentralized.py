"""Decentralized (serverless) learning: DFedSAM, a single global merge, variance correction, disrupted P2P, ...

    python -m experiments.decentralized --config=experiments/configs/decentralized.py:smoke \
        --config.experiment=dfedsam --workdir=/tmp/polyak/dfedsam

``--config.experiment`` names the sub-experiment (see ``experiments/lib/decentralized``); its settings are
``--config.<experiment>.*``. Each writes ``config.json``, ``metrics.jsonl``, ``results.json``, ``table.txt`` and a
PNG plot under ``--workdir`` and prints its table.
"""

from absl import app, flags
import jax

from experiments.lib import decentralized
from experiments.lib.common import script

_CONFIG = script.config_flag('decentralized')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/decentralized', 'Where config, metrics, results and plots go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(decentralized, _CONFIG, _WORKDIR))
