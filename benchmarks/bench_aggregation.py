"""Robust aggregation against ByzFL and against this machine's floor, side by side in one run.

    python benchmarks/bench_aggregation.py                      # n in {8, 32, 128} x d in {1e5, 1e6}, float32
    python benchmarks/bench_aggregation.py --n=8,32 --d=1e5 --rules=median,krum --rounds=3
    python benchmarks/bench_aggregation.py --record              # also store polyak's numbers in the repo
    python benchmarks/bench_aggregation.py --all                 # GB/s of every registered rule (no anchors)

For each cell (rule, n, d) the same float32 stack (``numpy.random.default_rng(seed)``, f = max((n-1)//4, 1)) is
given to the jitted polyak rule, to ByzFL 0.0.11 (fastest of its NumPy and torch paths; run by the Python of a
scratch environment, ``--byzfl-python``, through benchmarks/byzfl_worker.py, never imported here) and to the
floor: the time this machine needs for the rule's unavoidable work on the same stack, the faster of NumPy and
jax.numpy doing that work (a floor that either library beats would be mis-measured) -- one read of the stack (a sum
over workers: NumPy's ``np.add.reduce`` and BLAS ``w @ X``, jax's fused sum of rows and ``w @ X``) for the
single-pass and order-statistic rules, the Gram matrix ``X @ X.T`` (NumPy's BLAS, jax's product whole and in
column tiles of three widths) for Krum, the Gram matrix and one more product of its size for NNM (its mixing), one
read and the Gram matrix for the geometric median (distances in Gram form, then one combination). For the order
statistics one read is a lower bound, not the cost of a sort: those cells are met by the speed-up over ByzFL or
not at all. The three are timed in alternation, ``--rounds`` times, fastest kept, so that a loaded machine slows all
of them alike; the rules (none of them random) receive ``key=None``, so that neither key construction nor a key
argument is timed.

A cell meets the bar when polyak is at least 5x faster than ByzFL or within 1.5x of the floor (the looser of the
two). Without ByzFL the table compares with polyak's own numbers stored in benchmarks/results/aggregation.json
(``--record`` stores each cell as it is measured), so that a regression shows. Not a test: timings never gate CI.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import math
import os
import platform
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import decentral
from decentral import registry

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, 'results', 'aggregation.json')
DEFAULT_BYZFL_PYTHON = '/tmp/venv-byzfl/bin/python'
RULES = ('mean', 'median', 'trimmed_mean', 'krum', 'geometric_median', 'centered_clipping', 'nnm')
# The floor of each rule, in units of one read of the stack and one Gram matrix.
FLOOR = {'mean': (1, 0), 'centered_clipping': (1, 0), 'median': (1, 0), 'trimmed_mean': (1, 0), 'krum': (0, 1),
         'nnm': (0, 2), 'geometric_median': (1, 1)}
SPEEDUP, NEAR_FLOOR = 5.0, 1.5


def polyak_rule(name):
  """The rule ``name`` as ``fn(x, f) -> aggregate``: registered rules with their registered defaults (stateful ones
  applied once from their initial state), NNM as the pre-aggregation it is."""
  if name == 'nnm':
    return decentral.nnm
  return decentral.one_round(registry.rules.build(name))


MIN_SECONDS = 0.05  # each best_of keeps calling until this much time is spent, so fast calls get many samples


def best_of(fn, repeats):
  """The fastest of at least ``repeats`` calls, and of as many as fit in MIN_SECONDS: on a loaded machine the
  minimum over many samples is what the code costs, and a fast function must not get fewer samples than its floor."""
  best, spent, calls = math.inf, 0.0, 0
  while calls < repeats or spent < MIN_SECONDS:
    start = time.perf_counter()
    jax.block_until_ready(fn())
    elapsed = time.perf_counter() - start
    best, spent, calls = min(best, elapsed), spent + elapsed, calls + 1
  return best


class ByzFL:
  """ByzFL's timings from benchmarks/byzfl_worker.py, run by the scratch environment's Python."""

  def __init__(self, python):
    self.proc = subprocess.Popen([python, os.path.join(HERE, 'byzfl_worker.py')], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
    self.versions = json.loads(self.proc.stdout.readline())

  def times(self, **request):
    self.proc.stdin.write(json.dumps(request) + '\n')
    self.proc.stdin.flush()
    return json.loads(self.proc.stdout.readline())

  def close(self):
    self.proc.stdin.close()
    self.proc.wait()


def start_byzfl(python):
  if not python or not os.path.exists(python):
    return None
  try:
    return ByzFL(python)
  except (OSError, json.JSONDecodeError) as e:
    print(f'ByzFL unavailable ({type(e).__name__}: {e}); comparing with the stored numbers', file=sys.stderr)
    return None


def read_fns(n):
  """jax's two sums over workers: a fused sum of the rows (pairwise) and the BLAS product ``w @ X``."""
  def rows_sum(x):
    parts = [x[i] for i in range(n)]
    while len(parts) > 1:
      parts = [parts[i] + parts[i + 1] if i + 1 < len(parts) else parts[i] for i in range(0, len(parts), 2)]
    return parts[0]

  w = jnp.full((n,), 1.0 / n, jnp.float32)
  return [jax.jit(rows_sum), jax.jit(lambda x: jnp.matmul(w, x, precision=jax.lax.Precision.HIGHEST))]


def gram_fns(n, d):
  """jax's Gram matrix ``X @ X.T``: one product, and sums of products over column tiles of 256 KB, 512 KB and 2 MB
  (XLA:CPU's products of short, wide matrices are faster in tiles; the best width depends on n)."""
  def tiled(x, width):
    def body(i, g):
      t = jax.lax.dynamic_slice_in_dim(x, i * width, width, 1)
      return g + jnp.matmul(t, t.T, precision=jax.lax.Precision.HIGHEST)
    full = d // width * width
    rest = x[:, full:]
    g = jnp.matmul(rest, rest.T, precision=jax.lax.Precision.HIGHEST)
    return jax.lax.fori_loop(0, d // width, body, g)

  widths = sorted({max(128, (1 << b) // (4 * n) // 128 * 128) for b in (18, 19, 21)})
  fns = [jax.jit(lambda x: jnp.matmul(x, x.T, precision=jax.lax.Precision.HIGHEST))]
  return fns + [jax.jit(functools.partial(tiled, width=w)) for w in widths if w < d]


def floors(x_np, x, fns, repeats):
  """(one read of the stack, the Gram matrix) in seconds on the same stack: the fastest of NumPy's (BLAS
  ``w @ X``, ``np.add.reduce``; BLAS ``X @ X.T``) and jax's (``fns = (reads, grams)``, jitted and warmed up)."""
  w = np.full((x_np.shape[0],), 1.0 / x_np.shape[0], x_np.dtype)
  reads, grams = fns
  read = min([best_of(lambda: w @ x_np, repeats), best_of(lambda: np.add.reduce(x_np, axis=0), repeats)]
             + [best_of(functools.partial(fn, x), repeats) for fn in reads])
  gram = min([best_of(lambda: x_np @ x_np.T, repeats)] + [best_of(functools.partial(fn, x), repeats) for fn in grams])
  return read, gram


def bench_cell(names, n, d, args, byzfl):
  """Rows for every rule at one (n, d)."""
  f = max((n - 1) // 4, 1)
  seed = n * 7919 + d
  x_np = np.random.default_rng(seed).standard_normal((n, d), dtype=np.float32)
  x = jnp.asarray(x_np)
  key = None  # none of the rules timed here draws randomness; a key argument would only add dispatch time
  fns, compile_s = {}, {}
  for name in names:
    fn = jax.jit(functools.partial(polyak_rule(name), f=f))
    wall, cpu = time.perf_counter(), time.process_time()
    jax.block_until_ready(fn(x, key=key))
    compile_s[name] = (time.perf_counter() - wall, time.process_time() - cpu)
    fns[name] = fn
  best = {name: math.inf for name in names}
  byz = {name: {} for name in names}
  floor_fns = (read_fns(n), gram_fns(n, d))
  for fn in floor_fns[0] + floor_fns[1]:
    jax.block_until_ready(fn(x))
  read = gram = math.inf
  for _ in range(args.rounds):
    for name in names:
      best[name] = min(best[name], best_of(lambda: fns[name](x, key=key), args.repeats))
    if byzfl is not None:
      answer = byzfl.times(n=n, d=d, f=f, seed=seed, rules=list(names), repeats=args.repeats)
      for name in names:
        for path, t in answer[name].items():
          if isinstance(t, (int, float)):
            byz[name][path] = min(byz[name].get(path, math.inf), t)
          else:
            byz[name][path] = t
    r, g = floors(x_np, x, floor_fns, args.repeats)
    read, gram = min(read, r), min(gram, g)
  rows = []
  for name in names:
    times = {p: t for p, t in byz[name].items() if isinstance(t, float)}
    path = min(times, key=times.get) if times else None
    reads, grams = FLOOR[name]
    rows.append(dict(rule=name, n=n, d=d, f=f, polyak_ms=1e3 * best[name], compile_s=round(compile_s[name][0], 2),
                     compile_cpu_s=round(compile_s[name][1], 2),
                     byzfl_ms=1e3 * times[path] if path else None, byzfl_path=path or byz[name].get('skipped'),
                     floor_ms=1e3 * (reads * read + grams * gram)))
  return rows


def verdict(row):
  """'yes' when polyak meets the looser of the two bars (5x ByzFL, 1.5x the floor)."""
  bars = [NEAR_FLOOR * row['floor_ms']]
  if row['byzfl_ms']:
    bars.append(row['byzfl_ms'] / SPEEDUP)
  return 'yes' if row['polyak_ms'] <= max(bars) else 'NO'


def print_rows(rows, stored):
  print(f'{"rule":>18s} {"n":>4s} {"d":>8s} {"polyak ms":>10s} {"ByzFL ms":>10s} {"path":>6s} {"speed-up":>9s} '
        f'{"floor ms":>9s} {"x floor":>8s} {"met":>4s} {"compile s":>10s} {"vs stored":>10s}')
  for row in rows:
    byz = f'{row["byzfl_ms"]:10.2f}' if row['byzfl_ms'] else f'{"-":>10s}'
    speedup = f'{row["byzfl_ms"] / row["polyak_ms"]:8.1f}x' if row['byzfl_ms'] else f'{"-":>9s}'
    old = stored.get((row['rule'], row['n'], row['d']))
    regression = f'{row["polyak_ms"] / old:9.2f}x' if old else f'{"-":>10s}'
    path = (row['byzfl_path'] or '-')[:6]
    print(f'{row["rule"]:>18s} {row["n"]:4d} {row["d"]:8d} {row["polyak_ms"]:10.2f} {byz} {path:>6s} {speedup} '
          f'{row["floor_ms"]:9.2f} {row["polyak_ms"] / row["floor_ms"]:7.2f}x {verdict(row):>4s} '
          f'{row["compile_s"]:10.2f} {regression}', flush=True)


def print_matrix(rows):
  """The speed-ups over ByzFL as one line per rule (the issue's table)."""
  cells = sorted({(r['d'], r['n']) for r in rows})
  print('\nspeed-up over ByzFL (ByzFL time / polyak time); in brackets polyak time / floor; OK when the bar is met')
  print(f'{"rule":>18s} ' + ' '.join(f'{f"n={n},d={d:.0e}":>22s}' for d, n in cells))
  for name in dict.fromkeys(r['rule'] for r in rows):
    line = []
    for d, n in cells:
      row = next((r for r in rows if r['rule'] == name and r['n'] == n and r['d'] == d), None)
      if row is None:
        line.append(f'{"":>22s}')
        continue
      speed = f'{row["byzfl_ms"] / row["polyak_ms"]:.1f}x' if row['byzfl_ms'] else '-'
      cell = f'{speed} ({row["polyak_ms"] / row["floor_ms"]:.1f}x) {"OK" if verdict(row) == "yes" else "MISS"}'
      line.append(f'{cell:>22s}')
    print(f'{name:>18s} ' + ' '.join(line))


def load_stored():
  if not os.path.exists(RESULTS):
    return {}
  with open(RESULTS) as fh:
    return {(c['rule'], c['n'], c['d']): c['polyak_ms'] for c in json.load(fh)['cells']}


def record(rows, load, versions):
  """Stores the rows, replacing the stored cells of the same (rule, n, d) and keeping the others."""
  os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
  cells = []
  if os.path.exists(RESULTS):
    with open(RESULTS) as fh:
      cells = json.load(fh)['cells']
  run = dict(date=datetime.date.today().isoformat(), load_average=load)
  new = {(r['rule'], r['n'], r['d']): dict({k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()},
                                           **run) for r in rows}
  cells = [c for c in cells if (c['rule'], c['n'], c['d']) not in new] + list(new.values())
  out = dict(jax=jax.__version__, platform=platform.platform(), processor=platform.processor() or platform.machine(),
             cpus=os.cpu_count(), anchors=versions, cells=cells)
  with open(RESULTS, 'w') as fh:
    json.dump(out, fh, indent=1)
    fh.write('\n')


def throughput_all(ns, ds, repeats):
  """GB/s of every registered rule (its registered defaults), no anchors."""
  print(f'{"rule":>28s} {"n":>5s} {"d":>9s} {"GB/s":>8s} {"ms":>10s}')
  for name in registry.rules.names():
    fn_rule = decentral.one_round(registry.rules.build(name))
    for d in ds:
      for n in ns:
        x = jax.random.normal(jax.random.key(n), (n, d), jnp.float32)
        fn = jax.jit(functools.partial(fn_rule, f=max((n - 1) // 4, 1)))
        key = jax.random.key(0)
        try:
          jax.block_until_ready(fn(x, key=key))
          t = best_of(lambda: fn(x, key=key), repeats)
        except Exception as e:  # noqa: BLE001 (out of memory on small machines: report and go on)
          print(f'{name:>28s} {n:5d} {d:9d} failed: {type(e).__name__}')
          continue
        print(f'{name:>28s} {n:5d} {d:9d} {4 * n * d / t / 1e9:8.2f} {1e3 * t:10.2f}', flush=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--n', default='8,32,128')
  parser.add_argument('--d', default='1e5,1e6')
  parser.add_argument('--rules', default=','.join(RULES))
  parser.add_argument('--repeats', type=int, default=3, help='timed calls per round')
  parser.add_argument('--rounds', type=int, default=2, help='alternations of polyak, ByzFL and the floor')
  parser.add_argument('--byzfl-python', default=DEFAULT_BYZFL_PYTHON)
  parser.add_argument('--record', action='store_true', help=f'store the numbers in {os.path.relpath(RESULTS)}')
  parser.add_argument('--all', action='store_true', help='GB/s of every registered rule instead')
  args = parser.parse_args()
  ns = [int(v) for v in args.n.split(',')]
  ds = [int(float(v)) for v in args.d.split(',')]
  if args.all:
    throughput_all(ns, ds, args.repeats)
    return
  names = [r for r in args.rules.split(',') if r]
  if set(names) - set(RULES):
    raise SystemExit(f'unknown rules {sorted(set(names) - set(RULES))}; known: {", ".join(RULES)}')
  byzfl = start_byzfl(args.byzfl_python)
  load_before = os.getloadavg()
  print(f'jax {jax.__version__} on {jax.devices()[0].platform}, {os.cpu_count()} cpus, float32, fastest of '
        f'{args.rounds} x {args.repeats} calls; ByzFL: {byzfl.versions if byzfl else "not found"}; '
        f'load average {load_before[0]:.1f}\n')
  stored = load_stored()
  rows = []
  try:
    for d in ds:
      for n in ns:
        cell = bench_cell(names, n, d, args, byzfl)
        print_rows(cell, stored)
        rows += cell
        if args.record:  # cell by cell, so that an interrupted run keeps what it measured
          record(cell, [round(v, 1) for v in load_before + os.getloadavg()], byzfl.versions if byzfl else None)
  finally:
    if byzfl is not None:
      byzfl.close()
  load_after = os.getloadavg()
  print_matrix(rows)
  print(f'\nload average (1 min) {load_before[0]:.1f} before, {load_after[0]:.1f} after')


if __name__ == '__main__':
  main()
