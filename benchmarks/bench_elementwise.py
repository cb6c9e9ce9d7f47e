"""Element-wise optimizers against optax.adam: interleaved step times, XLA's bytes per step, the bound.

    python benchmarks/bench_elementwise.py                       # the element-wise optimizers
    python benchmarks/bench_elementwise.py --optimizers=diffgrad,sgd_sai --rounds=30

Same 10.5M-parameter tree as ``benchmarks/bench_step.py`` (a transformer-like stack). Steps of all optimizers
are timed in turn, round after round, and each reports its fastest step (wall clock, and the process's CPU time,
which a loaded machine disturbs less), so a load that changes during the run slows every optimizer alike.

Columns: ``XLA B/p`` is XLA's own count of bytes read and written by the compiled step per byte of parameters
(load-independent); ``need B/p`` is what the update must read and write (Adam: p, g, m, v read, p, m, v
written: 7); ``bound`` is the time allowed, ``1.3 x need / 7`` times adam's step (``3 x`` for
coordinate_clip_sgd, whose threshold is a selection over all coordinates); ``time`` says whether the step is
within it (judged on CPU time when the load average exceeds the cores), ``bytes`` whether XLA moves no more than
needed. XLA:CPU has no multi-output fusion: every array a step writes is its own loop, so the loop writing the
parameters reads the new state back (adam itself moves 10, not 7). Not a test.
"""

from __future__ import annotations

import os
import time

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np
import optax

from bench_step import make_tree  # the script's folder is on sys.path; also defines its flags
from optim import tree_bytes
from optim import registry

# --optimizers and --width are bench_step's flags (defined when it is imported).
ELEMENTWISE = ['adam', 'momentum', 'optax_adabelief', 'diffgrad', 'adabelief', 'adamp', 'sgdp', 'sgd_sai',
               'coordinate_clip_sgd']
# Bytes the update must read and write per parameter byte (float32 state), and why.
NEEDED = {
    'adam': 7,  # read p, g, m, v; write p, m, v
    'momentum': 5,  # read p, g, b; write p, b
    'optax_adabelief': 7, 'adabelief': 7,  # as adam, with s for v
    'diffgrad': 9,  # adam's, plus the previous gradient read and written
    'adamp': 10,  # the projection needs each tensor's sums first: read p, g, m, v, write m, v; read p, m, v, write p
    'sgdp': 8,  # sums first: read p, g, b; then read p, g, b, write p, b (the official projected buffer)
    'sgd_sai': 5,  # after the first step, momentum's
    'coordinate_clip_sgd': 6,  # one read of g for the threshold, then momentum's
}
TIME_FACTOR = {'coordinate_clip_sgd': 3.0}  # allowed step time in units of adam's x (need / 7); default 1.3
_ROUNDS = flags.DEFINE_integer('rounds', 15, 'Timed steps per optimizer, interleaved.')


def compiled_step(name: str, params):
  """The jitted, donated step of a registry entry, its state and XLA's bytes accessed per step."""
  entry = registry.get(name)
  tx = entry.build()

  def step(params, state, grads, key):
    extra = entry.oracles(loss_fn=lambda p: 0.0, params=params, key=key)
    updates, state = tx.update(grads, state, params, **extra)
    return optax.apply_updates(params, updates), state

  state = tx.init(params)
  compiled = jax.jit(step, donate_argnums=(0, 1)).lower(params, state, params, jax.random.key(0)).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  return compiled, state, float(cost.get('bytes accessed', np.nan))


def main(argv):
  del argv
  names = ['adam'] + [n for n in (flags.FLAGS.optimizers or ELEMENTWISE) if n != 'adam']
  base = make_tree(flags.FLAGS.width)
  param_bytes = tree_bytes(base)
  grads = jax.tree.map(lambda p: p + 1e-3, base)
  runs = {}
  for name in names:
    compiled, state, bytes_accessed = compiled_step(name, base)
    params = jax.tree.map(jnp.copy, base)
    state_bytes = tree_bytes(state)
    params, state = compiled(params, state, grads, jax.random.key(0))  # warm up
    runs[name] = dict(step=compiled, params=params, state=state, times=[], cpu=[], bytes=bytes_accessed,
                      state_bytes=state_bytes)
  for r in range(_ROUNDS.value):
    for name in names:
      run = runs[name]
      jax.block_until_ready((run['params'], run['state']))
      t0, c0 = time.perf_counter(), time.process_time()
      run['params'], run['state'] = run['step'](run['params'], run['state'], grads, jax.random.key(r + 1))
      jax.block_until_ready((run['params'], run['state']))
      run['times'].append(time.perf_counter() - t0)
      run['cpu'].append(time.process_time() - c0)
  load = os.getloadavg()[0]
  # Wall time is what users see; on a machine busier than its cores, the best wall time is luck, and the
  # verdict uses CPU time instead.
  by_cpu = load > (os.cpu_count() or 1)
  print(f'{sum(x.size for x in jax.tree.leaves(base)) / 1e6:.1f}M parameters, {jax.devices()[0].platform}, '
        f'fastest of {_ROUNDS.value} interleaved steps, load average {load:.1f} on {os.cpu_count()} cores: '
        f'verdict on {"CPU" if by_cpu else "wall"} time')
  print(f'{"optimizer":>20s} {"ms/step":>8s} {"vs adam":>8s} {"cpu ms":>7s} {"vs adam":>8s} {"XLA B/p":>8s} '
        f'{"need B/p":>8s} {"bound":>6s} {"time":>5s} {"bytes":>5s} {"state/p":>7s}')
  adam_t, adam_c = min(runs['adam']['times']), min(runs['adam']['cpu'])
  for name in names:
    run = runs[name]
    t, c = min(run['times']), min(run['cpu'])
    need = NEEDED.get(name, np.nan)
    bound = TIME_FACTOR.get(name, 1.3) * (need / NEEDED['adam'] if name not in TIME_FACTOR else 1.0)
    per_param = run['bytes'] / param_bytes
    ratio = c / adam_c if by_cpu else t / adam_t
    print(f'{name:>20s} {1e3 * t:8.2f} {t / adam_t:8.2f} {1e3 * c:7.2f} {c / adam_c:8.2f} {per_param:8.1f} '
          f'{need:8.0f} {bound:6.2f} {"OK" if ratio <= bound else "MISS":>5s} '
          f'{"OK" if per_param <= need + 0.05 else "MISS":>5s} {run["state_bytes"] / param_bytes:7.2f}', flush=True)


if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(main)
