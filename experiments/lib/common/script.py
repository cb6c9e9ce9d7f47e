"""What every ``experiments/<x>.py`` entry point does, once: run the library, print its table, record its claims.

Each experiment's library module (``experiments/lib/<x>``) offers

    run(config, workdir) -> outputs      # computes, writes its files through results.Writer, returns the outputs
    table(outputs) -> str                # what the script prints
    CLAIMS                               # the paper claims it measures (common.claims.Claim), maybe empty

so an entry point is a config flag, a workdir flag and ``main = script.main(lib, config_flag, workdir_flag)``.

Every entry point also takes ``--num_processes``, ``--process_id`` and ``--coordinator_address`` (or the
``POLYAK_*`` variables ``experiments/launch.py`` sets): with more than one process it joins JAX's multi-process
runtime before running (:func:`decentral.processes.initialize`), and only process 0 prints, records and writes.
"""

from __future__ import annotations

import os
import time

from absl import flags

from decentral import processes
from experiments.lib.common import claims as claims_lib

_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Processes of a multi-process run (one per host).')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, "This process's index in [0, num_processes).")
_COORDINATOR = flags.DEFINE_string('coordinator_address', None, 'host:port of process 0 in a multi-process run.')

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
  if processes.is_main():
    print(lib.table(outputs))
    claims_lib.record(todo, outputs, started=started)
    print(f'\nwrote {workdir}: {", ".join(sorted(os.listdir(workdir)))}')
  return outputs


def main(lib, config_flag, workdir_flag):
  """The absl ``main`` of an entry point."""

  def main_(argv):
    del argv
    processes.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    run(lib, config_flag.value, workdir_flag.value)

  return main_
