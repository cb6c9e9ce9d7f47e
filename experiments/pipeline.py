"""Heterogeneous low-bandwidth pre-training, small: SparseLoCo across 4 replicas of a 2-stage character transformer,
subspace-compressed pipeline links on all replicas or only on the pipelined ones, at equal tokens.

    python -m experiments.pipeline --config=experiments/configs/pipeline.py \
        --config.data_dir=../shared/data/tinyshakespeare --workdir=/tmp/polyak/pipeline
    python -m experiments.pipeline --config=experiments/configs/pipeline.py:smoke

Prints a table of the global model's validation loss, DP and PP bytes per condition, and writes ``config.json``,
``metrics.jsonl`` (one row per condition, with its curve), ``results.json`` and ``loss_vs_bytes.png`` under
``--workdir`` (see ``experiments/lib/pipeline.py``).
"""

from absl import app, flags
import jax

from experiments.lib import pipeline
from experiments.lib.common import script

_CONFIG = script.config_flag('pipeline')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/pipeline', 'Where config, metrics, results and plots go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(pipeline, _CONFIG, _WORKDIR))
