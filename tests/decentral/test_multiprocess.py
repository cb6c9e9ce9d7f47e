"""Every worker-axis method across real processes: 2 processes x 4 CPU devices on localhost, talking through
gloo, give the numbers of vmap over 8 workers in one process; their orbax checkpoint restores in one process.

The processes run ``multiprocess_worker.py`` (JAX's multi-controller runtime through
``decentral.processes.initialize``; ``decentral.axis.run(..., backend='shard_map')`` on the mesh spanning both).
A collective computed per process instead of globally (a pmean over the 4 local workers) changes every number,
so the comparison fails. A timeout keeps a hung collective from hanging the suite.
"""

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from decentral import axis, processes

HERE = os.path.dirname(os.path.abspath(__file__))
# One case per family: robust aggregation (with an attack), gossip (D-SGD, MoNNA), compression (EF21, DGC),
# local SGD (DiLoCo, Streaming DiLoCo), federated (Just One Byte), and rules with state (centered clipping).
# pmap spans processes too: one case runs under it.
CASES = ['diloco', 'byzantine', 'aggregate:krum', 'aggregate:centered_clipping', 'dsgd', 'monna', 'ef21', 'dgc',
         'streaming_diloco', 'just_one_byte', 'monna@pmap']
TIMEOUT = 600  # generous: the processes share 2 cores with the rest of the suite


def by_path(tree):
  """Leaves by their path ('anchor/dense/w'), the same for a NamedTuple state and orbax's restored dict."""
  name = lambda k: str(getattr(k, 'name', getattr(k, 'key', getattr(k, 'idx', k))))
  return {'/'.join(map(name, path)): np.asarray(x) for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _free_port():
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _child_env():
  # The children choose their own device count; the other XLA flags (the suite's compile settings) carry over.
  flags = [f for f in os.environ.get('XLA_FLAGS', '').split() if 'device_count' not in f]
  return {**os.environ, 'XLA_FLAGS': ' '.join(flags)}


def _launch(out, cases, num_processes=2):
  port = _free_port()
  env = _child_env()
  procs = [subprocess.Popen([sys.executable, os.path.join(HERE, 'multiprocess_worker.py'), str(p),
                             str(num_processes), str(port), str(out), *cases],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
           for p in range(num_processes)]
  logs = []
  try:
    for p in procs:
      logs.append(p.communicate(timeout=TIMEOUT)[0])
  finally:
    for p in procs:
      p.kill()
  return [p.returncode for p in procs], logs


@pytest.fixture(scope='module')
def two_processes(tmp_path_factory):
  out = tmp_path_factory.mktemp('multiprocess')
  codes, logs = _launch(out, CASES)
  assert codes == [0, 0], '\n'.join(log[-3000:] for log in logs)
  return out


def test_every_family_equals_vmap_over_all_workers(two_processes):
  for p in range(2):
    with open(two_processes / f'diff_{p}.json') as f:
      diffs = json.load(f)
    assert set(diffs) == set(CASES)
    bad = {name: d for name, d in diffs.items() if not d <= 1e-5}
    assert not bad, f'process {p}: largest difference to vmap over 8 workers {bad}'


def test_checkpoint_of_the_processes_restores_in_one_process(two_processes):
  checkpointer = ocp.StandardCheckpointer()
  path = two_processes / 'checkpoint'
  one_device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
  target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=one_device),
                        checkpointer.metadata(path).item_metadata.tree)
  restored = by_path(checkpointer.restore(path, target))
  want = np.load(two_processes / 'want.npz')
  assert sorted(restored) == sorted(want.files)
  for key in want.files:
    np.testing.assert_allclose(restored[key], want[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_processes_that_disagree_get_an_error_not_a_hang(tmp_path):
  # Process 1 runs a case the other does not: the signature check fails on both, naming the difference.
  port, env = _free_port(), _child_env()
  script = ("import os, sys; os.environ['XLA_FLAGS'] += ' --xla_force_host_platform_device_count=4'\n"
            "import jax.numpy as jnp\nfrom decentral import axis, processes\n"
            "pid = int(sys.argv[1]); processes.initialize(f'localhost:{sys.argv[2]}', 2, pid)\n"
            "x = jnp.ones((4, 3 + pid))\n"
            "axis.run(lambda v: v, 8, backend='shard_map')(x)\n")
  procs = [subprocess.Popen([sys.executable, '-c', script, str(p), str(port)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for p in range(2)]
  try:
    logs = [p.communicate(timeout=120)[0] for p in procs]
  finally:
    for p in procs:
      p.kill()
  for p, log in zip(procs, logs):
    assert p.returncode != 0
    assert 'processes disagree' in log and '(4, 3)' in log and '(4, 4)' in log, log[-2000:]


def test_one_process_needs_no_runtime():
  assert processes.initialize() is False
  assert processes.is_main()
  processes.agree('anything', 'test')  # one process: nothing to compare
  assert axis.worker_mesh(4).devices.shape == (4,)
