"""The worker axis across processes on one machine: time per step and loopback bytes, 1 vs 2 vs 4 processes.

    python benchmarks/bench_processes.py                 # 8 workers, d = 1e6, D-SGD-style step with a mean
    python benchmarks/bench_processes.py --d=100000 --steps=20

The same per-worker step (a quadratic's gradient, ``decentral.aggregate(decentral.mean)``, an SGD step: every
worker all-gathers the 8 updates) runs for 8 workers under vmap and shard_map in one process, then with
``backend='shard_map'`` on 2 and 4 processes holding 4 and 2 virtual CPU devices each, joined through
``decentral.processes.initialize`` (gloo on localhost). Printed side by side: milliseconds per step and its ratio
to the one-process shard_map run, and the bytes each process sent per step, measured on the loopback interface
(``/proc/net/dev``, all processes together, divided by their number; 0 in one process). On a 2-core machine the
point is the cost of the collectives, not a speed-up: all processes share the same two cores. Not a test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from absl import app, flags

_D = flags.DEFINE_integer('d', 1_000_000, 'Parameters per worker.')
_STEPS = flags.DEFINE_integer('steps', 10, 'Timed steps (after one compiling step).')
_CHILD = flags.DEFINE_string('child', '', 'Internal: "backend,process_id,num_processes,port" of one process.')
N = 8


def loopback_bytes() -> int:
  with open('/proc/net/dev') as f:
    for line in f:
      if line.strip().startswith('lo:'):
        return int(line.split(':')[1].split()[8])  # transmitted bytes
  return 0


def child(spec: str, d: int, steps: int) -> dict:
  """One process of a run: time ``steps`` jitted steps; returns ms/step and loopback bytes/step."""
  backend, pid, count, port = spec.split(',')
  pid, count = int(pid), int(count)
  import jax
  import jax.numpy as jnp
  import optax

  import decentral
  from decentral import axis, processes
  if count > 1:
    processes.initialize(f'localhost:{port}', count, pid)
  tx = optax.chain(decentral.aggregate(decentral.mean, axis_name='workers'), optax.sgd(0.1))

  def step(x, state, target):
    updates, state = tx.update(x - target, state)
    return optax.apply_updates(x, updates), state

  run = axis.run(step, N, backend=backend)
  rows = processes.local_rows(N) if backend != 'vmap' else slice(0, N)
  x = jax.random.normal(jax.random.key(0), (N, d))[rows]
  target = jnp.zeros_like(x)
  state = axis.run(tx.init, N)(jax.random.normal(jax.random.key(0), (N, d)))
  state = jax.tree.map(lambda s: s[rows] if getattr(s, 'ndim', 0) and s.shape[0] == N else s, state)
  x, state = jax.block_until_ready(run(x, state, target))
  sent, start = loopback_bytes(), time.perf_counter()
  for _ in range(steps):
    x, state = run(x, state, target)
  jax.block_until_ready(x)
  seconds = time.perf_counter() - start
  return {'ms': 1e3 * seconds / steps, 'loopback_bytes': (loopback_bytes() - sent) / steps}


def measure(backend: str, count: int, d: int, steps: int) -> dict:
  """Runs ``count`` processes of :func:`child`; process 0's numbers, loopback bytes divided over processes."""
  sock = __import__('socket').socket()
  sock.bind(('localhost', 0))
  port = sock.getsockname()[1]
  sock.close()
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  env.update(JAX_PLATFORMS='cpu', XLA_FLAGS=f'--xla_force_host_platform_device_count={N // count}')
  outs = [tempfile.TemporaryFile('w+') for _ in range(count)]
  procs = [subprocess.Popen([sys.executable, __file__, f'--child={backend},{p},{count},{port}', f'--d={d}',
                             f'--steps={steps}'], env=env, stdout=outs[p], stderr=subprocess.DEVNULL, text=True)
           for p in range(count)]
  codes = [p.wait(timeout=1800) for p in procs]
  outs[0].seek(0)
  lines = [line for line in outs[0].read().splitlines() if line.startswith('{')]
  if any(codes) or not lines:
    return {'ms': float('nan'), 'loopback_bytes': float('nan')}
  result = json.loads(lines[-1])
  result['loopback_bytes'] /= count
  return result


def main(argv):
  del argv
  if _CHILD.value:
    print(json.dumps(child(_CHILD.value, _D.value, _STEPS.value)), flush=True)
    return
  d, steps = _D.value, _STEPS.value
  print(f'{N} workers, d = {d}, {steps} steps; each worker all-gathers {N * d * 4 / 1e6:.1f} MB per step\n')
  print(f'{"run":>28s} {"ms/step":>10s} {"vs 1-process shard_map":>24s} {"MB sent/process/step":>22s}')
  runs = [('vmap', 1), ('shard_map', 1), ('shard_map', 2), ('shard_map', 4), ('pmap', 2)]
  base = None
  for backend, count in runs:
    r = measure(backend, count, d, steps)
    if (backend, count) == ('shard_map', 1):
      base = r['ms']
    ratio = f'{r["ms"] / base:.2f}x' if base else ''
    label = f'{backend}, {count} process' + ('es' if count > 1 else '')
    print(f'{label:>28s} {r["ms"]:10.1f} {ratio:>24s} {r["loopback_bytes"] / 1e6:22.2f}', flush=True)


if __name__ == '__main__':
  app.run(main)
