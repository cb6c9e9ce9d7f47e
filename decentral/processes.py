"""JAX's multi-controller runtime for the worker axis: one process per host, started by :func:`initialize`.

On a cluster each host runs the same command; ``jax.distributed.initialize`` connects them (its arguments, or the
environment a scheduler such as SLURM sets), after which ``jax.devices()`` lists the devices of every process and
:func:`decentral.axis.run` spreads the workers over all of them. On CPU the processes talk through gloo
collectives, so one machine can try the whole path with several local processes (``experiments/launch.py``).
"""

from __future__ import annotations

import hashlib
import os

import jax
import numpy as np
from jax.experimental import multihost_utils

# The variables experiments/launch.py sets for each process it starts (a scheduler may set them too).
ENV = {'coordinator_address': 'POLYAK_COORDINATOR_ADDRESS', 'num_processes': 'POLYAK_NUM_PROCESSES',
       'process_id': 'POLYAK_PROCESS_ID'}


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> bool:
  """Joins the multi-process runtime; returns whether there is more than one process.

  Arguments left ``None`` are read from ``POLYAK_COORDINATOR_ADDRESS``, ``POLYAK_NUM_PROCESSES`` and
  ``POLYAK_PROCESS_ID``; with none of them set and ``num_processes`` unset, nothing happens (one process). With
  ``num_processes`` but no address, ``jax.distributed.initialize`` detects the cluster (SLURM, Open MPI, TPU pods).
  On CPU the collectives go through gloo. Call it before anything else touches the devices.
  """
  coordinator_address = coordinator_address or os.environ.get(ENV['coordinator_address']) or None
  if num_processes is None and os.environ.get(ENV['num_processes']):
    num_processes = int(os.environ[ENV['num_processes']])
  if process_id is None and os.environ.get(ENV['process_id']):
    process_id = int(os.environ[ENV['process_id']])
  if not num_processes or num_processes == 1:
    return False
  if process_id is not None and not 0 <= process_id < num_processes:
    raise ValueError(f'decentral.processes.initialize: process_id must be in [0, {num_processes}), got {process_id}')
  if (os.environ.get('JAX_PLATFORMS') or jax.config.jax_platforms or 'cpu').startswith('cpu'):
    jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                             process_id=process_id)
  return jax.process_count() > 1


def is_main() -> bool:
  """Whether this is process 0, the one that writes results and checkpoints."""
  return jax.process_index() == 0


def local_rows(n: int) -> slice:
  """The rows of n stacked workers that this process holds under :func:`decentral.axis.run` across processes
  (process p of P: ``p n / P`` to ``(p + 1) n / P``); all n in one process."""
  count, p = jax.process_count(), jax.process_index()
  if n % count:
    raise ValueError(f'decentral.processes.local_rows: n={n} workers do not split evenly over {count} processes')
  return slice(p * n // count, (p + 1) * n // count)


def agree(description: str, caller: str, width: int = 2048) -> None:
  """Raises a ValueError on every process unless all processes passed the same ``description``.

  One all-gather of ``width`` bytes: cheap next to a training step, and it turns a call that would leave the
  processes waiting in different collectives into an error naming what differs.
  """
  if jax.process_count() == 1:
    return
  encoded = description.encode()
  row = np.zeros(width + 8, np.uint8)
  row[:8] = np.frombuffer(hashlib.sha256(encoded).digest()[:8], np.uint8)  # differs beyond `width` too
  row[8:8 + min(len(encoded), width)] = np.frombuffer(encoded[:width], np.uint8)
  everyone = np.asarray(multihost_utils.process_allgather(row))
  if (everyone == everyone[0]).all():
    return
  texts = [bytes(r[8:]).rstrip(b'\0').decode(errors='replace') for r in everyone]
  odd = [p for p in range(len(texts)) if (everyone[p] != everyone[0]).any()]
  raise ValueError(f'{caller}: the processes disagree on the call; process 0: {texts[0]}; '
                   + '; '.join(f'process {p}: {texts[p]}' for p in odd))
