"""What every ``experiments/<x>.py`` entry point does, once: run the library, print its table, record its claims.

Each experiment's library module (``experiments/lib/<x>``) offers

    run(config, workdir) -> outputs      # computes, writes its files through results.Writer, returns the outputs
    table(outputs) -> str                # what the script prints
    CLAIMS                               # the paper claims it measures (common.claims.Claim), maybe empty

so an entry point is a config flag, a workdir flag and ``main = script.main(lib, config_flag, workdir_flag)``.
"""

from __future__ import annotations

import os
import time

from experiments.lib.common import claims as claims_lib

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'configs')


def config_path(name: str) -> str:
  """``experiments/configs/<name>.py``: the default of an entry point's ``--config``."""
  return os.path.join(CONFIGS, f'{name}.py')


def run(lib, config, workdir: str):
  """Runs ``lib`` with ``config`` in ``workdir``, prints its table, records its claims if ``config.record``."""
  import matplotlib
  matplotlib.use('Agg')  # scripts draw to files only
  todo = claims_lib.to_record(getattr(lib, 'CLAIMS', ()), config)  # fails before the run, not after it
  started = time.perf_counter()
  outputs = lib.run(config, workdir)
  print(lib.table(outputs))
  claims_lib.record(todo, outputs, started=started)
  print(f'\nwrote {workdir}: {", ".join(sorted(os.listdir(workdir)))}')
  return outputs


def main(lib, config_flag, workdir_flag):
  """The absl ``main`` of an entry point."""

  def main_(argv):
    del argv
    run(lib, config_flag.value, workdir_flag.value)

  return main_
