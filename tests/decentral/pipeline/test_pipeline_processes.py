"""The heterogeneous run across two real processes (2 replicas x 2 stages each, gloo on localhost) gives the
numbers of vmap over all 4 replicas in one process: parameters, losses, pipeline and outer bytes, error feedback.

Marked slow: two processes that each compile the step twice cost about 18 s of CPU, near the whole budget of the
pipeline tests; the default suite keeps vmap = shard_map on one process (test_heterogeneous.py).
"""

import json
import os
import socket
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT = 600  # generous: the processes share 2 cores with the rest of the suite


def _free_port():
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_equal_vmap_over_all_replicas(tmp_path):
  # The children choose their own device count; the other XLA flags (the suite's compile settings) carry over.
  flags = [f for f in os.environ.get('XLA_FLAGS', '').split() if 'device_count' not in f]
  env = {**os.environ, 'XLA_FLAGS': ' '.join(flags)}
  port = _free_port()
  procs = [subprocess.Popen([sys.executable, os.path.join(HERE, 'pipeline_processes_worker.py'), str(p), '2',
                             str(port), str(tmp_path)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True) for p in range(2)]
  try:
    logs = [p.communicate(timeout=TIMEOUT)[0] for p in procs]
  finally:
    for p in procs:
      p.kill()
  assert [p.returncode for p in procs] == [0, 0], '\n'.join(log[-3000:] for log in logs)
  for p in range(2):
    with open(tmp_path / f'diff_{p}.json') as f:
      result = json.load(f)
    assert result['replicas'] == 2  # each process got back its own two replicas
    assert result['diff'] <= 1e-5, f'process {p}: largest difference to vmap over all replicas {result}'
