"""Element-wise optimizers against optax.adam: interleaved step times, XLA's bytes per step, state size.

    python benchmarks/bench_elementwise.py                       # the element-wise optimizers
    python benchmarks/bench_elementwise.py --optimizers=diffgrad,sgd_sai --rounds=30

Same 10.5M-parameter tree as ``benchmarks/bench_step.py`` (a transformer-like stack). Steps of all optimizers
are timed in turn, round after round, and each reports its fastest step, so a machine whose load changes
during the run slows every optimizer alike. ``bytes/param`` is XLA's own count of bytes read and written by the
compiled step, per byte of parameters (load-independent): the roofline of an element-wise update is the bytes
it must move, e.g. Adam reads params, grads and two moments and writes three arrays. Not a test.
"""

from __future__ import annotations

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
    runs[name] = dict(step=compiled, params=params, state=state, times=[], bytes=bytes_accessed,
                      state_bytes=state_bytes)
  for r in range(_ROUNDS.value):
    for name in names:
      run = runs[name]
      jax.block_until_ready((run['params'], run['state']))
      t0 = time.perf_counter()
      run['params'], run['state'] = run['step'](run['params'], run['state'], grads, jax.random.key(r + 1))
      jax.block_until_ready((run['params'], run['state']))
      run['times'].append(time.perf_counter() - t0)
  print(f'{sum(x.size for x in jax.tree.leaves(base)) / 1e6:.1f}M parameters, {jax.devices()[0].platform}, '
        f'fastest of {_ROUNDS.value} interleaved steps')
  print(f'{"optimizer":>20s} {"ms/step":>8s} {"vs adam":>8s} {"bytes/param":>11s} {"vs adam":>8s} '
        f'{"state/param":>11s}')
  adam_t, adam_b = min(runs['adam']['times']), runs['adam']['bytes']
  for name in names:
    run = runs[name]
    t = min(run['times'])
    print(f'{name:>20s} {1e3 * t:8.2f} {t / adam_t:8.2f} {run["bytes"] / param_bytes:11.1f} '
          f'{run["bytes"] / adam_b:8.2f} {run["state_bytes"] / param_bytes:11.2f}', flush=True)


if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(main)
