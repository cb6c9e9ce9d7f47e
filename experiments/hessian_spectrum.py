"""Hessian spectra of small MLPs (Sagun et al. 1706.04454; Granziol et al. 2006.09092), exact in float64.

    python -m experiments.hessian_spectrum --workdir=/tmp/polyak/hessian
    python -m experiments.hessian_spectrum --config=experiments/configs/hessian_spectrum.py:smoke
    python -m experiments.hessian_spectrum --config.data_dir=../shared/data/mnist   # MNIST-PCA instead of digits

Prints the headline records (one JSON object a line) and writes ``config.json``, ``results.json``,
``metrics.jsonl`` and the figures under ``--workdir`` (see ``experiments/lib/hessian_spectrum.py``).
"""

from absl import app, flags
import jax

from experiments.lib import hessian_spectrum
from experiments.lib.common import script

_CONFIG = script.config_flag('hessian_spectrum')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/hessian', 'Where config, metrics, results and plots go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(hessian_spectrum, _CONFIG, _WORKDIR))
