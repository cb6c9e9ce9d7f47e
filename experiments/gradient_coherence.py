"""Coherence of per-example gradients with real and random labels, and its suppression by robust averaging
(Chatterjee & Zielinski, 2203.10036), exact in float64.

    python -m experiments.gradient_coherence --workdir=/tmp/polyak/coherence
    python -m experiments.gradient_coherence --config=experiments/configs/gradient_coherence.py:smoke
    python -m experiments.gradient_coherence --config.data_dir=../shared/data/mnist   # MNIST for the coherence part

Prints the headline records (one JSON object a line) and writes ``config.json``, ``results.json``,
``metrics.jsonl`` and the figures under ``--workdir`` (see ``experiments/lib/gradient_coherence.py``).
"""

from absl import app, flags
import jax

from experiments.lib import gradient_coherence
from experiments.lib.common import script

_CONFIG = script.config_flag('gradient_coherence')
_WORKDIR = flags.DEFINE_string('workdir', '/tmp/polyak/coherence', 'Where config, metrics, results and plots go.')

if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(script.main(gradient_coherence, _CONFIG, _WORKDIR))
