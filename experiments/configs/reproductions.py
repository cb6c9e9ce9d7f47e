"""Config of experiments/reproductions.py (no presets): where the stored results are and where the ledger goes.

    python -m experiments.reproductions        # prints the table, writes REPRODUCTIONS.md

Reads the claims declared in experiments/lib and experiments/results/*.json; runs no experiment (seconds).
"""

import os

import ml_collections

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def get_config(preset: str = ''):
  if preset:
    raise ValueError(f'unknown preset {preset!r}; the ledger has none')
  c = ml_collections.ConfigDict()
  c.results_dir = os.path.join(_ROOT, 'experiments', 'results')
  c.output = os.path.join(_ROOT, 'REPRODUCTIONS.md')
  return c
