"""Config of the training script. ``--config=experiments/configs/train.py:<optimizer>`` fills in that optimizer's
hyperparameters (the registered defaults, and every argument of its factory with a number, string or boolean
default) so each can be overridden: ``--config.optimizer.learning_rate=0.01``, ``--config.optimizer.b1=0.95``.
A misspelt field is one line naming it and the nearest valid names.

    python -m experiments.train --config=experiments/configs/train.py:adam --workdir=/tmp/polyak/train
      500 Adam steps of a digits MLP: final full-batch train loss 0.035 (last batch 0.019), test accuracy 0.972;
      10 s on 2 CPU cores. Rerun with the same workdir to resume (a finished one says so); --config.stop_after=k
      stops at step k.

    python -m experiments.train --config.privacy.noise_multiplier=1.1 --config.privacy.l2_norm_clip=1.0 \
        --config.privacy.delta=1e-5 --workdir=/tmp/polyak/dp
      DP-SGD (experiments/lib/common/dp_training.py): Poisson batches, per-example clipping and noise before the
      optimizer; the epsilon spent so far on every progress line, metrics row and in the final table.
"""

import inspect

import ml_collections
from ml_collections.config_dict import placeholder

from optim import registry


def hyperparameters(optimizer: str) -> dict:
  """The registered defaults of ``optimizer`` and its factory's arguments with literal defaults (overridable)."""
  entry = registry.get(optimizer)
  try:
    parameters = inspect.signature(entry.factory).parameters.values()
  except (TypeError, ValueError):
    parameters = ()
  literal = {p.name: p.default for p in parameters
             if isinstance(p.default, (bool, int, float, str)) and p.kind != p.VAR_KEYWORD}
  return {**literal, **entry.defaults}


def get_config(optimizer: str = 'adam'):
  c = ml_collections.ConfigDict()
  c.optimizer = ml_collections.ConfigDict({'name': optimizer, **hyperparameters(optimizer)})
  c.model = 'mlp'
  c.data_dir = ''           # MNIST IDX folder (e.g. ../shared/data/mnist); empty = bundled digits
  c.steps = 500
  c.batch_size = 128
  c.seed = 0
  c.log_every = 50          # progress line and metrics row every N steps
  c.checkpoint_every = 100
  c.stop_after = -1         # stop early at this step (simulates an interruption; resume by rerunning)
  c.privacy = ml_collections.ConfigDict({
      'noise_multiplier': placeholder(float),  # set (0 too) to train with DP-SGD; unset: not private
      'l2_norm_clip': 1.0,    # per-example clip C (inf: none; needs noise_multiplier 0)
      'delta': 1e-5,
      'sampling': 'poisson',  # 'poisson' (rate batch_size / N, index + mask) or 'shuffle' (fixed-size batches)
      'accountant': 'rdp',    # or 'pld'
  })
  return c
