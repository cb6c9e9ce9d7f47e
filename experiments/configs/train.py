"""Config of the training script. ``--config=experiments/configs/train.py:<optimizer>`` fills in that optimizer's
hyperparameters (the registered defaults, and every argument of its factory with a number, string or boolean
default) so each can be overridden: ``--config.optimizer.learning_rate=0.01``, ``--config.optimizer.b1=0.95``.
A misspelt field is one line naming it and the nearest valid names.

    python -m experiments.train --config=experiments/configs/train.py:adam --workdir=/tmp/polyak/train
      500 Adam steps of a digits MLP: final full-batch train loss 0.035 (last batch 0.019), test accuracy 0.972;
      10 s on 2 CPU cores. Rerun with the same workdir to resume (a finished one says so); --config.stop_after=k
      stops at step k.
"""

import inspect

import ml_collections

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
  return c
