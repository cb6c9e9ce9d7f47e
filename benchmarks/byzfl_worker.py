"""Times ByzFL's aggregators for benchmarks/bench_aggregation.py, run by the Python of a scratch environment.

    python3 -m venv /tmp/venv-byzfl && /tmp/venv-byzfl/bin/pip install byzfl==0.0.11 torch==2.13.0 numpy

Not part of the project (it imports neither jax nor the project; ByzFL is never a dependency). Reads one JSON
request per line on stdin, ``{"n", "d", "f", "seed", "rules", "repeats"}``, builds the same float32 stack as the
caller (``numpy.random.default_rng(seed).standard_normal((n, d), dtype=float32)``), and answers one JSON line:
per rule the fastest call in seconds on NumPy input and on torch input, or a reason it was skipped.
"""

import importlib
import importlib.metadata
import importlib.util
import json
import sys
import time
import types

import numpy as np
import torch


def byzfl_aggregators():
  """ByzFL's aggregators module alone: the package's __init__ also imports its training benchmark, which needs a
  torchvision matching torch exactly; the aggregators need only numpy, scipy and torch."""
  package = types.ModuleType('byzfl')
  package.__path__ = list(importlib.util.find_spec('byzfl').submodule_search_locations)
  sys.modules['byzfl'] = package
  return importlib.import_module('byzfl.aggregators')


agg = byzfl_aggregators()
BUILD = {
    'mean': lambda f: agg.Average(),
    'median': lambda f: agg.Median(),
    'trimmed_mean': lambda f: agg.TrMean(f=f),
    'krum': lambda f: agg.Krum(f=f),
    'geometric_median': lambda f: agg.GeometricMedian(nu=0.1, T=3),
    'centered_clipping': lambda f: agg.CenteredClipping(tau=100.0, L=1),
    'nnm': lambda f: agg.NNM(f=f),
}
MEMORY_LIMIT = 8e9  # bytes: NNM gathers an (n, n - f, d) tensor; larger requests are reported, not attempted


LONG = 1.0  # seconds: a warm-up call this long counts as a timed call, and one more call is enough


def best_time(rule_name, f, x, repeats):
  times = []
  for i in range(repeats + 1):  # the first call warms up (allocations, torch's thread pool)
    rule = BUILD[rule_name](f)  # fresh each call: CenteredClipping keeps its centre between calls
    start = time.perf_counter()
    rule(x)
    times.append(time.perf_counter() - start)
    if times[0] > LONG and i >= 1:
      return min(times)
  return min(times[1:])


def answer(request):
  n, d, f = request['n'], request['d'], request['f']
  x = np.random.default_rng(request['seed']).standard_normal((n, d), dtype=np.float32)
  out = {}
  for name in request['rules']:
    if name == 'nnm' and 4 * n * (n - f) * d > MEMORY_LIMIT:
      out[name] = {'skipped': f'out of memory: NNM gathers {4 * n * (n - f) * d / 1e9:.0f} GB'}
      continue
    times = {}
    for kind, data in (('numpy', x), ('torch', torch.from_numpy(x))):
      try:
        times[kind] = best_time(name, f, data, request['repeats'])
      except (MemoryError, RuntimeError) as e:
        times[kind] = None
        out.setdefault('errors', []).append(f'{name}/{kind}: {type(e).__name__}')
    out[name] = times
  return out


def main():
  print(json.dumps({'byzfl': importlib.metadata.version('byzfl'), 'torch': torch.__version__,
                    'numpy': np.__version__, 'torch_threads': torch.get_num_threads()}), flush=True)
  for line in sys.stdin:
    if line.strip():
      print(json.dumps(answer(json.loads(line))), flush=True)


if __name__ == '__main__':
  main()
