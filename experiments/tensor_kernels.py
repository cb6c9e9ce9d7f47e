"""Tensor-program kernels (Yang, 1902.04760): finite networks against the infinite-width NNGP and NTK recursions
as the width grows, and the semicircle / Marchenko-Pastur laws on sampled matrices.

    python -m experiments.tensor_kernels --workdir=/tmp/polyak/tensor_kernels
    python -m experiments.tensor_kernels --config=experiments/configs/tensor_kernels.py:smoke

Prints the headline records (one JSON object a line) and writes ``config.json``, ``results.json``,
``metrics.jsonl`` and the figures under ``--workdir`` (see ``experiments/lib/tensor_kernels.py``).
"""

from absl import app, flags
import jax

from experiments.lib import tensor_kernels
from experiments.lib.common import script

_CONFIG = script.config_flag('tensor_kernels')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/tensor_kernels', 'Where config, metrics, results and plots go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(tensor_kernels, _CONFIG, _WORKDIR))
