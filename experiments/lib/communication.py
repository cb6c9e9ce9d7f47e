"""Communication-efficient training: a dispatcher over named sub-experiments (``--config.experiment``).

Each sub-experiment is a module in ``experiments/lib`` with

    default_config(preset: str) -> ml_collections.ConfigDict   # its settings, for presets '', 'medium', 'smoke'
    run(config, workdir: str) -> list[dict]                     # writes metrics.jsonl etc., returns summary rows
    table(rows) -> str                                          # the summary as text

and one line in :data:`EXPERIMENTS`. ``experiments/configs/communication.py`` builds one sub-config per
registered experiment (``config.<name>``); ``config.experiment`` picks the one to run. Modules that are not
present in this checkout are skipped when the config is built.
"""

from __future__ import annotations

import importlib
import importlib.util

# name -> module. ef21 / dgc / compressors: issue 5 part 1; diloco: DiLoCo, Streaming DiLoCo, SparseLoCo, EDiT.
EXPERIMENTS = {
    'ef21': 'experiments.lib.ef21_experiment',
    'dgc': 'experiments.lib.dgc_experiment',
    'compressors': 'experiments.lib.compressors_experiment',
    'diloco': 'experiments.lib.local_sgd_experiment',
}


def available() -> dict[str, str]:
  """The registered experiments whose module exists in this checkout."""
  return {k: v for k, v in EXPERIMENTS.items() if importlib.util.find_spec(v) is not None}


def module(name: str):
  table = available()
  if name not in table:
    raise ValueError(f'unknown experiment {name!r}; known: {", ".join(sorted(table))}')
  return importlib.import_module(table[name])


def run(config, workdir: str) -> tuple[list[dict], str]:
  """Runs ``config.experiment`` with its sub-config; returns (summary rows, the table as text)."""
  mod = module(config.experiment)
  rows = mod.run(config[config.experiment], workdir)
  return rows, mod.table(rows)
