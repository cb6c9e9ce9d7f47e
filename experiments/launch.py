"""Starts N local processes of one command, joined in JAX's multi-process runtime: a cluster on one machine.

    python -m experiments.launch --num_processes=2 -- python -m experiments.robust \
        --config=experiments/configs/robust.py:smoke --config.backend=shard_map

Each process gets ``POLYAK_NUM_PROCESSES``, ``POLYAK_PROCESS_ID`` and ``POLYAK_COORDINATOR_ADDRESS`` (a free port on
localhost), and ``--devices_per_process`` virtual CPU devices; the entry points read them
(``decentral.processes.initialize``), so the command is the one you would run on each host of a cluster, where
the scheduler (or these flags) gives the address of process 0 instead. Process 0's output is shown as it comes;
the others' is shown if they fail. The launcher exits with the first non-zero exit code.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time

from absl import app, flags

from decentral import processes

_NUM = flags.DEFINE_integer('num_processes', 2, 'How many local processes to start.')
_DEVICES = flags.DEFINE_integer('devices_per_process', 4, 'Virtual CPU devices in each process.')
_TIMEOUT = flags.DEFINE_float('timeout', 3600.0, 'Seconds before every process is stopped.')


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def environment(process_id: int, num_processes: int, address: str, devices: int) -> dict[str, str]:
  """The environment of one local process: the runtime's variables and its virtual CPU devices."""
  env = dict(os.environ)
  env.update({processes.ENV['num_processes']: str(num_processes), processes.ENV['process_id']: str(process_id),
              processes.ENV['coordinator_address']: address, 'JAX_PLATFORMS': env.get('JAX_PLATFORMS', 'cpu')})
  flags_ = [f for f in env.get('XLA_FLAGS', '').split() if not f.startswith('--xla_force_host_platform_device_count')]
  env['XLA_FLAGS'] = ' '.join(flags_ + [f'--xla_force_host_platform_device_count={devices}'])
  return env


def launch(command: list[str], num_processes: int, devices: int, timeout: float) -> int:
  address = f'localhost:{free_port()}'
  # The other processes write to files, not pipes: a full pipe would stall a process inside a collective.
  logs = [None] + [tempfile.TemporaryFile('w+') for _ in range(1, num_processes)]
  procs = [subprocess.Popen(command, env=environment(p, num_processes, address, devices), stdout=logs[p],
                            stderr=subprocess.STDOUT if p else None, text=True) for p in range(num_processes)]
  deadline = time.monotonic() + timeout
  try:
    # A process that fails leaves the others waiting in a collective: stop them all at the first failure.
    while any(proc.poll() is None for proc in procs):
      if any(proc.poll() for proc in procs) or time.monotonic() > deadline:
        break
      time.sleep(0.2)
  finally:
    for proc in procs:
      if proc.poll() is None:
        proc.kill()
  codes = [proc.wait() for proc in procs]
  for p in range(1, num_processes):
    if codes[p]:
      logs[p].seek(0)
      print(f'--- process {p} (exit {codes[p]}) ---\n{logs[p].read()[-5000:]}', file=sys.stderr)
  return next((c for c in codes if c), 0)


def main(argv):
  command = argv[1:]
  if not command:
    raise app.UsageError('give the command after --, e.g. -- python -m experiments.robust ...')
  sys.exit(launch(command, _NUM.value, _DEVICES.value, _TIMEOUT.value))


if __name__ == '__main__':
  app.run(main)
