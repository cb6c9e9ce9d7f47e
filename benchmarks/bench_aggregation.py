"""Throughput of every aggregation rule: gigabytes of stacked worker updates aggregated per second.

    python benchmarks/bench_aggregation.py                       # n in {8, 32, 128}, d in {1e5, 1e6}
    python benchmarks/bench_aggregation.py --n=8,32 --d=100000 --rules=krum,nnm+trimmed_mean

For each registered rule (``decentral.registry.rules``, its registered defaults) and size, the jitted rule runs on an (n, d) float32 stack (``repeats`` timed calls after a
warm-up; the fastest is kept) and the line reports GB/s = 4 n d / time, the time, and how the time grows with n
(the exponent of n between consecutive sizes: 1 for linear rules, up to 2 for the O(n^2 d) ones). A last block
compares the Gram-form pairwise distances the distance rules use with the explicit (n, n, d) difference tensor,
side by side. Not a test: timing never gates CI; the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import functools
import math
import time

import jax
import jax.numpy as jnp

import decentral
from decentral import registry, stacked


def rule(name):
  """The registered rule ``name`` with its registered defaults, called like a stateless rule."""
  return decentral.one_round(registry.rules.build(name))


# Rules whose cost is O(n^2 d) without a Gram form: skipped above this many n^2 d multiply-adds.
QUADRATIC_LIMIT = {'multi_metrics': 2e9}


def _time(fn, *args, repeats):
  jax.block_until_ready(fn(*args))
  best = math.inf
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    best = min(best, time.perf_counter() - t)
  return best


def bench_rules(names, ns, ds, repeats):
  print(f'{"rule":>28s} {"n":>5s} {"d":>9s} {"GB/s":>8s} {"ms":>10s} {"n-exponent":>10s}')
  for name in names:
    rule_fn = rule(name)
    for d in ds:
      prev = None
      for n in ns:
        if n * n * d > QUADRATIC_LIMIT.get(name, math.inf):
          print(f'{name:>28s} {n:5d} {d:9d} {"skipped (O(n^2 d) > limit)":>30s}')
          continue
        f = max((n - 1) // 4, 1)
        x = jax.random.normal(jax.random.key(n), (n, d), jnp.float32)
        fn = jax.jit(functools.partial(rule_fn, f=f))
        try:
          t = _time(lambda x, k: fn(x, key=k), x, jax.random.key(0), repeats=repeats)
        except Exception as e:  # noqa: BLE001 (out of memory on small machines: report and go on)
          print(f'{name:>28s} {n:5d} {d:9d} failed: {type(e).__name__}')
          continue
        gbs = 4 * n * d / t / 1e9
        exponent = '' if prev is None else f'{math.log(t / prev[1]) / math.log(n / prev[0]):10.2f}'
        print(f'{name:>28s} {n:5d} {d:9d} {gbs:8.2f} {1e3 * t:10.2f} {exponent:>10s}', flush=True)
        prev = (n, t)
        del x


def bench_gram(ns, d, repeats):
  print(f'\npairwise squared distances, Gram form vs explicit (n, n, d) differences, d={d}')
  print(f'{"n":>5s} {"gram ms":>10s} {"explicit ms":>12s} {"explicit/gram":>14s}')

  def gram(x):
    rs = [x]
    return stacked.pairwise_sq_distances(rs, stacked.finite_rows(rs))

  def explicit(x):
    return jnp.sum((x[:, None, :] - x[None, :, :]) ** 2, axis=-1)

  for n in ns:
    if n * n * d * 4 > 4e9:
      print(f'{n:5d} explicit tensor needs {n * n * d * 4 / 1e9:.0f} GB: skipped')
      continue
    x = jax.random.normal(jax.random.key(0), (n, d))
    tg = _time(jax.jit(gram), x, repeats=repeats)
    te = _time(jax.jit(explicit), x, repeats=repeats)
    print(f'{n:5d} {1e3 * tg:10.2f} {1e3 * te:12.2f} {te / tg:14.1f}', flush=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--n', default='8,32,128')
  parser.add_argument('--d', default='100000,1000000')
  parser.add_argument('--rules', default=','.join(registry.rules.names()))
  parser.add_argument('--repeats', type=int, default=3)
  args = parser.parse_args()
  ns = [int(v) for v in args.n.split(',')]
  ds = [int(float(v)) for v in args.d.split(',')]
  names = [r for r in args.rules.split(',') if r]
  unknown = set(names) - set(registry.rules.names())
  if unknown:
    raise SystemExit(f'unknown rules {sorted(unknown)}; known: {", ".join(registry.rules.names())}')
  print(f'jax {jax.__version__} on {jax.devices()[0].platform}, float32, fastest of {args.repeats} calls\n')
  bench_rules(names, ns, ds, args.repeats)
  bench_gram([n for n in ns if n <= 32] or ns[:1], 100_000, args.repeats)


if __name__ == '__main__':
  main()
