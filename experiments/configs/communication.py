"""Config of experiments/communication.py: one sub-config per sub-experiment, ``experiment`` picks which runs.

Presets ('' full, 'medium', 'smoke' under a CPU-minute) apply to every sub-config, e.g.

    python -m experiments.communication --config=experiments/configs/communication.py:smoke \
        --config.experiment=dgc --workdir=/tmp/polyak/dgc
    python -m experiments.communication --config=experiments/configs/communication.py \
        --config.experiment=ef21 --config.ef21.data_dir=../shared/data/libsvm --config.ef21.dataset=a9a
"""

import importlib

import ml_collections

from experiments.lib import communication


def get_config(preset: str = ''):
  c = ml_collections.ConfigDict()
  c.experiment = 'ef21'
  for name, path in communication.available().items():
    c[name] = importlib.import_module(path).default_config(preset)
  return c
