"""What every ``experiments/<x>.py`` entry point does, once: run the library, print its table, record its claims.

Each experiment's library module (``experiments/lib/<x>``) offers

    run(config, workdir) -> outputs      # computes, writes its files through results.Writer, returns the outputs
    table(outputs) -> str                # what the script prints
    CLAIMS                               # the paper claims it measures (common.claims.Claim), maybe empty

so an entry point is a config flag (``script.config_flag('<x>')``, never ml_collections' ``DEFINE_config_file``
directly: tests/experiments/test_entry_points.py checks), a workdir flag and ``main = script.main(lib, config,
workdir)``.

Runs are quiet by default: absl logs warnings and errors only, so orbax's per-checkpoint INFO lines and JAX's
backend notices stay off the console (``--verbosity=0`` shows them, ``--verbosity=1`` adds debug lines). What a
run prints is its progress lines (``experiments/lib/common/progress.py``), its table and the files it wrote. A
mistake on the command line (an unknown ``--config.<field>``, a misspelt optimizer name, a missing data
directory) is one line, ``error: ...`` with the nearest valid names
(``experiments/lib/common/usage.py``), and exit status 2; Ctrl-C stops with status 130 and no traceback (a
training run keeps its checkpoints: rerun to resume).

Every entry point also takes ``--num_processes``, ``--process_id`` and ``--coordinator_address`` (or the
``POLYAK_*`` variables ``experiments/launch.py`` sets): with more than one process it joins JAX's multi-process
runtime before running (:func:`decentral.processes.initialize`), and only process 0 prints, records and writes.
"""

from __future__ import annotations

import os
import sys
import time

from absl import flags, logging
from ml_collections import config_flags

from decentral import processes
from experiments.lib.common import claims as claims_lib
from experiments.lib.common import usage

_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Processes of a multi-process run (one per host).')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, "This process's index in [0, num_processes).")
_COORDINATOR = flags.DEFINE_string('coordinator_address', None, 'host:port of process 0 in a multi-process run.')

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), 'configs')


def config_path(name: str) -> str:
  """``experiments/configs/<name>.py``: the default of an entry point's ``--config``."""
  return os.path.join(CONFIGS, f'{name}.py')


def config_flag(name: str):
  """``--config``, defaulting to ``experiments/configs/<name>.py``; an unknown ``--config.<field>`` is one line.

  ml_collections applies the overrides while the flag is defined, so the check runs first, on ``sys.argv``.
  """
  try:
    usage.check_command_line(sys.argv[1:], config_path(name))
  except usage.UsageError as e:
    fail(e)
  return config_flags.DEFINE_config_file('config', config_path(name))


def fail(error: Exception):
  """Stops the script with ``error: <message>`` on stderr, exit status 2."""
  print(f'error: {error}', file=sys.stderr, flush=True)
  raise SystemExit(2)


def quiet_logging() -> None:
  """absl at WARNING unless ``--verbosity`` is given (absl's ``app.run`` would otherwise log INFO to stderr)."""
  if not flags.FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)


def run(lib, config, workdir: str):
  """Runs ``lib`` with ``config`` in ``workdir``, prints its table, records its claims if ``config.record``."""
  import matplotlib
  matplotlib.use('Agg')  # scripts draw to files only
  usage.check_data_dir(config)  # before the library writes anything to the workdir
  todo = claims_lib.to_record(getattr(lib, 'CLAIMS', ()), config)  # fails before the run, not after it
  started = time.perf_counter()
  outputs = lib.run(config, workdir)
  if processes.is_main():
    print(lib.table(outputs))
    claims_lib.record(todo, outputs, started=started)
    print(f'\nwrote {workdir}: {", ".join(sorted(os.listdir(workdir)))}')
  return outputs


def main(lib, config_holder, workdir_holder):
  """The absl ``main`` of an entry point, given its ``--config`` and ``--workdir`` flag holders."""

  def main_(argv):
    del argv
    quiet_logging()
    processes.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    try:
      run(lib, config_holder.value, workdir_holder.value)
    except usage.UsageError as e:
      fail(e)
    except KeyboardInterrupt:
      print('interrupted', file=sys.stderr, flush=True)
      raise SystemExit(130)

  return main_
