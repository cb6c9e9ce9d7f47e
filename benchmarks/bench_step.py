"""Step time and state bytes of registered optimizers on a 10M-parameter tree, as ratios to optax.adam.

    python benchmarks/bench_step.py                           # every registered optimizer
    python benchmarks/bench_step.py --optimizers=adam,diffgrad,muon --repeats=20

Every optimizer is timed in the same process on the same tree (a transformer-like stack of matrices, vectors,
a conv kernel and a scalar, 10.5M float32 parameters), jitted, with parameters and state donated, in rounds
interleaved with adam and muon so that a busy machine slows all three alike. The ratios are
what to read; absolute times depend on the machine. ``muon`` (optax.contrib.muon) is the reference for the
matrix optimizers. Not a test: timing never gates CI.
"""

from __future__ import annotations

import time
from typing import Callable

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np
import optax

from optim import registry, tree_bytes

_OPTIMIZERS = flags.DEFINE_list('optimizers', [], 'Registry names; empty = all registered.')
_REPEATS = flags.DEFINE_integer('repeats', 10, 'Timed steps per optimizer (the fastest is reported).')
_WIDTH = flags.DEFINE_integer('width', 512, 'Model width; 512 gives 10.5M parameters.')


def make_tree(width: int = 512, blocks: int = 3, vocab: int = 2048) -> dict:
  """A transformer-like parameter tree: embedding, attention and MLP matrices, norms, biases, a conv, a scalar."""
  key = iter(jax.random.split(jax.random.key(0), 64))
  normal = lambda *shape: 0.02 * jax.random.normal(next(key), shape)
  tree = {'embed': normal(vocab, width), 'conv': normal(3, 3, 64, 64), 'temperature': jnp.asarray(1.0)}
  for b in range(blocks):
    tree[f'block{b}'] = {
        'qkv': normal(width, 3 * width), 'out': normal(width, width), 'ln1': jnp.ones(width),
        'mlp_in': normal(width, 4 * width), 'mlp_in_bias': jnp.zeros(4 * width),
        'mlp_out': normal(4 * width, width), 'ln2': jnp.ones(width)}
  return tree


def _loss(params):
  return 0.5 * sum(jnp.vdot(p, p) for p in jax.tree.leaves(params))


def prepare(entry: registry.Entry, params) -> tuple[Callable[[int], float], int]:
  """A compiled step as ``run(t) -> seconds`` (state carried inside, donated) and the state bytes."""
  tx = entry.build()

  def step(params, state, grads, key):
    extra = entry.oracles(loss_fn=_loss, params=params, key=key)
    updates, state = tx.update(grads, state, params, **extra)
    return optax.apply_updates(params, updates), state

  step = jax.jit(step, donate_argnums=(0, 1))
  grads = jax.tree.map(lambda p: p + 1e-3, params)
  carry = [jax.tree.map(jnp.copy, params)]
  carry.append(tx.init(carry[0]))
  state_bytes = tree_bytes(carry[1])

  def run(t: int) -> float:
    t0 = time.perf_counter()
    carry[:] = step(carry[0], carry[1], grads, jax.random.key(t))
    jax.block_until_ready(carry)
    return time.perf_counter() - t0

  run(0)  # compile
  return run, state_bytes


def interleaved(runs: dict, repeats: int) -> dict:
  """Fastest time of each step over ``repeats`` rounds that take turns, so a busy machine hits all alike."""
  times = {name: [] for name in runs}
  for t in range(repeats):
    for name, run in runs.items():
      times[name].append(run(t + 1))
  return {name: float(np.min(v)) for name, v in times.items()}


def main(argv):
  del argv
  names = _OPTIMIZERS.value or registry.names()
  names = ['adam', 'muon'] + [n for n in names if n not in ('adam', 'muon')]
  params = make_tree(_WIDTH.value)
  param_bytes = tree_bytes(params)
  print(f'{sum(p.size for p in jax.tree.leaves(params)) / 1e6:.1f}M parameters, {jax.devices()[0].platform}, '
        f'best of {_REPEATS.value} steps')
  print(f'{"optimizer":>20s} {"ms/step":>9s} {"vs adam":>8s} {"vs muon":>8s} {"state/param":>11s}')
  baselines = {n: prepare(registry.get(n), params)[0] for n in ('adam', 'muon')}
  for name in names:
    run, state_bytes = prepare(registry.get(name), params)
    best = interleaved({**baselines, name: run}, _REPEATS.value)
    print(f'{name:>20s} {1e3 * best[name]:9.2f} {best[name] / best["adam"]:8.2f} '
          f'{best[name] / best["muon"]:8.2f} {state_bytes / param_bytes:11.2f}', flush=True)


if __name__ == '__main__':
  jax.config.parse_flags_with_absl()
  app.run(main)
