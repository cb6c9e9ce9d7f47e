"""The periodic refresh steps: Sophia's Hessian-diagonal estimate against optax.contrib.sophia's, FRUGAL's SVD.

    python benchmarks/bench_refresh.py                 # the 10.5M-parameter tree of bench_step.py
    python benchmarks/bench_refresh.py --quick         # a tiny tree, one round (a smoke run, not a measurement)
    python benchmarks/bench_refresh.py --record        # also store the numbers in benchmarks/results/refresh.json

Sophia: the step that refreshes the curvature estimate (the first step, ``count = 0``, where both
implementations estimate) of ``optim.sophia_h`` (Gaussian probes, the paper's; and Rademacher) against
``optax.contrib.sophia`` (Rademacher), jitted, on the same tree and the same loss, plus the plain step of each.
The loss is a cheap element-wise function of the parameters, so that what the refresh adds around the
Hessian-vector product (probes, copies of the tree) is not hidden behind a model's forward and backward pass.
The bar is a refresh within 1.5x optax's.

FRUGAL: the step that refreshes the projectors of the tree's matrices (``count = 0``) with the full SVD (the
authors' code), the randomized SVD (Halko-Martinsson-Tropp, 10 oversampling columns, 2 power iterations) and
subspace iteration warm-started from the previous projector, on gradients with a geometrically decaying
spectrum (``G = X diag(0.97^i) Y`` with Gaussian ``X``, ``Y``); the accuracy of each approximate top-r subspace
is its largest principal angle to the full SVD's (the worst direction) and the share of the gradient's energy it
holds relative to the full SVD's subspace (what FRUGAL's Adam part sees). Steps are timed in turn, round after
round, fastest kept, so a loaded machine slows all alike; the load average is printed. Not a test: timings
never gate CI.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.linalg

from bench_step import make_tree  # the script's folder is on sys.path
from optim.optimizers import frugal, sophia

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, 'results', 'refresh.json')
SOPHIA_BAR = 1.5
SVD_METHODS = ('full', 'randomized', 'subspace')


def elementwise_loss(params):
  """A cheap loss with a non-trivial diagonal Hessian: sum of tanh(p)^2 over every leaf."""
  return sum(jnp.sum(jnp.square(jnp.tanh(p))) for p in jax.tree.leaves(params))


def interleaved(fns: dict, rounds: int) -> dict:
  """Fastest of ``rounds`` calls of each zero-argument function, called in turn; each is warmed up first."""
  for fn in fns.values():
    jax.block_until_ready(fn())
  times = {name: [] for name in fns}
  for _ in range(rounds):
    for name, fn in fns.items():
      t0 = time.perf_counter()
      jax.block_until_ready(fn())
      times[name].append(time.perf_counter() - t0)
  return {name: min(t) for name, t in times.items()}


def sophia_steps(params, names) -> dict:
  """Zero-argument refresh and plain steps of ours and optax's, jitted."""
  grads = jax.grad(elementwise_loss)(params)
  variants = {'sophia_h': sophia.sophia_h(1e-3),
              'sophia_h rademacher': sophia.sophia_h(1e-3, distribution='rademacher'),
              'optax.contrib.sophia': optax.contrib.sophia(1e-3)}
  variants = {name: variants[name] for name in names}
  fns = {}
  for name, tx in variants.items():
    step = jax.jit(lambda p, g, s, tx=tx: tx.update(g, s, p, obj_fn=elementwise_loss))
    fresh = tx.init(params)  # count 0: both implementations estimate at this step
    later = step(params, grads, fresh)[1]  # count 1: no estimate
    fns[f'{name} refresh'] = lambda step=step, s=fresh: step(params, grads, s)
    fns[f'{name} plain'] = lambda step=step, s=later: step(params, grads, s)
  return fns


def decaying_gradients(params, seed: int = 0):
  """Gradients whose matrices have a geometrically decaying spectrum, ``X diag(0.97^i) Y``; other leaves ones."""
  keys = iter(jax.random.split(jax.random.key(seed), 2 * len(jax.tree.leaves(params))))

  def grad(p):
    if p.ndim != 2:
      return jnp.ones_like(p)
    k = min(p.shape)
    x, y = jax.random.normal(next(keys), (p.shape[0], k)), jax.random.normal(next(keys), (k, p.shape[1]))
    return (x * 0.97 ** jnp.arange(k)) @ y / np.sqrt(k)

  return jax.tree.map(grad, params)


def frugal_steps(params, grads, methods) -> tuple[dict, dict]:
  """Zero-argument refresh steps of FRUGAL per SVD method, its plain step, and the projectors refreshed."""
  fns, projectors = {}, {}
  for method in methods:
    tx = frugal.scale_by_frugal(svd_method=method)
    step = jax.jit(tx.update)
    fresh = tx.init(params)
    if method == 'subspace':  # warm start: the previous interval's subspace, from the same gradients
      fresh = step(grads, fresh)[1]._replace(count=jnp.zeros([], jnp.int32))
    fns[f'frugal {method} refresh'] = lambda step=step, s=fresh: step(grads, s)
    later = step(grads, fresh)[1]
    projectors[method] = later.projector
    if method == 'full':
      fns['frugal plain'] = lambda step=step, s=later: step(grads, s)
  return fns, projectors


def columns(projector) -> np.ndarray:
  """A projector as a basis of columns: FRUGAL stores ``r x n`` rows (right side) or ``m x r`` columns (left)."""
  p = np.asarray(projector, np.float64)
  return p.T if p.shape[0] < p.shape[1] else p


def accuracy(projectors: dict, grads) -> dict:
  """Per method, over all matrices: the largest principal angle (radians) to the full SVD's top-r subspace, and
  the smallest fraction of the gradient's energy in the full SVD's subspace that the method's subspace holds."""
  full = jax.tree.leaves(projectors['full'])
  mats = [np.asarray(g, np.float64) for g in jax.tree.leaves(grads) if g.ndim == 2]
  energy = lambda g, p: np.sum(np.square(g @ p if p.shape[0] == g.shape[1] else p.T @ g))
  out = {}
  for method in [m for m in projectors if m != 'full']:
    ours = jax.tree.leaves(projectors[method])
    angles = [np.max(scipy.linalg.subspace_angles(columns(a), columns(b))) for a, b in zip(full, ours)]
    held = [energy(g, columns(b)) / energy(g, columns(a)) for g, a, b in zip(mats, full, ours)]
    out[method] = dict(angle=float(max(angles)), energy=float(min(held)))
  return out


def load_stored() -> dict:
  if not os.path.exists(RESULTS):
    return {}
  with open(RESULTS) as fh:
    return {r['step']: r['seconds'] for r in json.load(fh)['rows']}


def print_table(rows, stored):
  print(f'{"step":>34s} {"seconds":>9s} {"ratio":>22s} {"bar":>6s} {"met":>4s} {"vs stored":>10s}')
  for r in rows:
    old = stored.get(r['step'])
    ratio = f'{r["ratio"]:.2f}x {r["ratio_to"]}' if r.get('ratio') is not None else '-'
    bar = f'{r["bar"]:.1f}x' if r.get('bar') else '-'
    met = ('yes' if r['ratio'] <= r['bar'] else 'NO') if r.get('bar') else '-'
    vs = f'{r["seconds"] / old:.2f}x' if old else '-'
    print(f'{r["step"]:>34s} {r["seconds"]:9.4f} {ratio:>22s} {bar:>6s} {met:>4s} {vs:>10s}')


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--width', type=int, default=512, help='bench_step tree width (512: 10.5M parameters)')
  parser.add_argument('--rounds', type=int, default=5, help='timed rounds (fastest kept)')
  parser.add_argument('--quick', action='store_true', help='a tree of 5 small matrices, 1 round: a smoke run')
  parser.add_argument('--record', action='store_true', help=f'store the numbers in {os.path.relpath(RESULTS)}')
  parser.add_argument('--json', default='', help='also write the rows to this file')
  args = parser.parse_args()
  width, rounds = (16, 1) if args.quick else (args.width, args.rounds)
  params = make_tree(width, blocks=1, vocab=64) if args.quick else make_tree(width)
  size = sum(p.size for p in jax.tree.leaves(params))
  load_before = os.getloadavg()
  print(f'jax {jax.__version__}, optax {optax.__version__}, {jax.devices()[0].platform}, {size / 1e6:.2f}M '
        f'parameters, {sum(p.ndim == 2 for p in jax.tree.leaves(params))} matrices, fastest of {rounds} '
        f'interleaved rounds; load average {load_before[0]:.1f} {load_before[1]:.1f} {load_before[2]:.1f}', flush=True)

  # Quick mode leaves out the variants that only add compile time.
  sophias = ('sophia_h', 'optax.contrib.sophia') if args.quick else ('sophia_h', 'sophia_h rademacher',
                                                                     'optax.contrib.sophia')
  methods = SVD_METHODS[:2] if args.quick else SVD_METHODS
  times = interleaved(sophia_steps(params, sophias), rounds)
  print(f'Sophia timed; FRUGAL refreshes by {", ".join(methods)} SVD next', flush=True)
  grads = decaying_gradients(params)
  fns, projectors = frugal_steps(params, grads, methods)
  times.update(interleaved(fns, max(1, rounds // 2)))
  quality = accuracy(projectors, grads)

  rows = []
  for name in sophias:
    for kind in ('refresh', 'plain'):
      step = f'{name} {kind}'
      ratio = times[step] / times[f'optax.contrib.sophia {kind}']
      rows.append(dict(step=step, seconds=times[step], ratio=ratio, ratio_to='optax',
                       bar=SOPHIA_BAR if kind == 'refresh' and name != 'optax.contrib.sophia' else None))
  plain = times['frugal plain']
  for method in methods:
    step = f'frugal {method} refresh'
    cost = (times[step] - plain) / (times['frugal full refresh'] - plain)  # what the refresh adds to a step
    rows.append(dict(step=step, seconds=times[step], ratio=cost, ratio_to='of full SVD cost',
                     **quality.get(method, {})))
  rows.append(dict(step='frugal plain', seconds=plain))
  print_table(rows, load_stored())
  for method, q in quality.items():
    print(f'{method}: largest principal angle to the full SVD\'s top-r subspace {q["angle"]:.1e} rad; '
          f'gradient energy held, relative to that subspace, at least {q["energy"]:.4f}')
  load_after = os.getloadavg()
  print(f'load average (1 min) {load_before[0]:.1f} before, {load_after[0]:.1f} after', flush=True)

  record = dict(jax=jax.__version__, optax=optax.__version__, platform=platform.platform(), cpus=os.cpu_count(),
                date=datetime.date.today().isoformat(), parameters=int(size), width=width, rounds=rounds,
                load_average=[round(v, 2) for v in load_before + load_after], rows=rows)
  paths = ([RESULTS] if args.record else []) + ([args.json] if args.json else [])
  for path in paths:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w') as fh:
      json.dump(record, fh, indent=1)
      fh.write('\n')


if __name__ == '__main__':
  main()
