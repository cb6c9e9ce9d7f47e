"""One process of the multi-process check (run by test_multiprocess.py, never collected by pytest).

    python multiprocess_worker.py PROCESS_ID NUM_PROCESSES PORT OUT_DIR CASE [CASE ...]

Each process owns 8 / NUM_PROCESSES of the conformance suite's 8 workers on as many virtual CPU devices. For each
case (a name of ``test_conformance_decentral.CASES``, or ``name@pmap``) it runs the suite's steps with
``backend='shard_map'`` (or pmap) on the devices of all processes, feeding only its own workers' rows, and the
same steps under vmap over all 8 workers inside this process; it writes the largest difference per case to
``OUT_DIR/diff_<id>.json``. The state of the first case is also saved with orbax from all processes together, for
a single-process restore.
"""

import json
import os
import sys

PROCESS_ID, NUM_PROCESSES, PORT, OUT = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
CASES = sys.argv[5:]
os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') +
                           f' --xla_force_host_platform_device_count={8 // NUM_PROCESSES}')
os.environ['JAX_PLATFORMS'] = 'cpu'
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402  (after the device count is set)
import numpy as np  # noqa: E402
import orbax.checkpoint as ocp  # noqa: E402
from jax.experimental import multihost_utils  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

from decentral import axis, processes  # noqa: E402

processes.initialize(f'localhost:{PORT}', NUM_PROCESSES, PROCESS_ID)
import test_conformance_decentral as suite  # noqa: E402  (builds the cases; needs the runtime up)
from test_multiprocess import by_path  # noqa: E402

N, AXIS = suite.N, suite.AXIS
mine = slice(PROCESS_ID * N // NUM_PROCESSES, (PROCESS_ID + 1) * N // NUM_PROCESSES)


def rows(tree):
  return jax.tree.map(lambda x: x[mine], tree)


def largest_difference(a, b):
  a, b = suite._comparable(a), suite._comparable(b)
  return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)), initial=0.0))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def compare(spec):
  name, _, backend = spec.partition('@')  # 'monna@pmap': the case under pmap; shard_map by default
  case, tx = suite.CASES[name], suite._tx(name)
  across = axis.run(suite._step_fn(case, tx), N, axis_name=AXIS, backend=backend or 'shard_map')
  inside = axis.run(suite._step_fn(case, tx), N, axis_name=AXIS)
  params, state = suite._params(), suite._init(name)(suite._params())
  ours, ref = (rows(params), rows(state), None), (params, state, None)
  for t in range(suite.STEPS):
    data = suite._data(t)
    ours = across(*ours[:2], *rows(data))
    ref = inside(*ref[:2], *data)
  return largest_difference(ours, rows(ref)), ours[1], ref[1]


diffs = {}
for i, name in enumerate(CASES):
  diffs[name], state, want = compare(name)
  if i == 0:  # a checkpoint written by all processes together, restored later in one process
    mesh = axis.worker_mesh(N, axis_name=AXIS)
    shared = multihost_utils.host_local_array_to_global_array(suite._comparable(state), mesh, P(AXIS))
    saver = ocp.StandardCheckpointer()
    saver.save(os.path.join(OUT, 'checkpoint'), shared)
    saver.wait_until_finished()
    if processes.is_main():
      np.savez(os.path.join(OUT, 'want.npz'), **by_path(suite._comparable(want)))
with open(os.path.join(OUT, f'diff_{PROCESS_ID}.json'), 'w') as f:
  json.dump(diffs, f)
