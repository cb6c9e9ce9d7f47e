"""Runs PyHessian (arXiv 1912.07145) on the problem saved by benchmarks/bench_curvature.py, one task per request.

    /tmp/venv-pyhessian/bin/python benchmarks/pyhessian_worker.py problem.npz

Run in a scratch venv (``pip install torch==2.13.0 pyhessian``), never imported by polyak. It reads one JSON
request per line on stdin, ``{"dtype": "float64", "task": "top-10"}``, runs the task once and answers one JSON
line, so that the benchmark can interleave PyHessian's runs with polyak's on a loaded machine. Tasks as
PyHessian's README calls them: ``eigenvalues(top_n=1)`` and ``top_n=10`` (power iteration with deflation, its
defaults maxIter=100, tol=1e-3), ``trace(maxIter=100, tol=0)`` (tol 0 makes it use all 100 probes),
``density(iter=100, n_v=1)``, and one HVP of its stored graph (``hessian_vector_product(gradsH, params, v)``).
torch 2.x removed ``torch.eig``, which ``density`` calls; :func:`_eig` puts back an equivalent for symmetric input.
"""

import json
import sys
import time

import numpy as np
import torch
from pyhessian import hessian
from pyhessian.utils import hessian_vector_product


def _eig(a, eigenvectors=True):
  # torch.eig, which PyHessian 0.1's density() calls, is gone from torch 2.x; T is symmetric tridiagonal, so
  # eigh gives the same pairs, returned in torch.eig's layout (real and imaginary parts as two columns).
  values, vectors = torch.linalg.eigh(a)
  return torch.stack([values, torch.zeros_like(values)], 1), vectors if eigenvectors else None


def build(data, dtype):
  """PyHessian's ``hessian`` object for the MLP 784-128-128-10 (tanh) with the saved weights, in ``dtype``."""
  torch_dtype = getattr(torch, dtype)
  torch.set_default_dtype(torch_dtype)
  torch.manual_seed(0)
  layers = []
  for i in range(3):
    linear = torch.nn.Linear(*data[f'w{i}'].shape)
    with torch.no_grad():
      linear.weight.copy_(torch.from_numpy(data[f'w{i}'].T.copy()))
      linear.bias.copy_(torch.from_numpy(data[f'b{i}']))
    layers += [linear, torch.nn.Tanh()] if i < 2 else [linear]
  model = torch.nn.Sequential(*layers)
  x = torch.from_numpy(data['x']).to(torch_dtype)
  y = torch.from_numpy(data['y']).long()
  comp = hessian(model, torch.nn.CrossEntropyLoss(), data=(x, y), cuda=False)
  v = [torch.randn_like(p) for p in comp.params]
  hessian_vector_product(comp.gradsH, comp.params, v)  # warm up
  return comp, v


def run(comp, v, task):
  """Times one task; returns its seconds and, for the eigenvalue tasks, the values (descending; for ``slq`` the
  largest node)."""
  torch.manual_seed(0)
  t0 = time.perf_counter()
  out = {}
  if task == 'hvp':
    hessian_vector_product(comp.gradsH, comp.params, v)
  elif task.startswith('top-'):
    values, _ = comp.eigenvalues(top_n=int(task[4:]))
    out['values'] = sorted(map(float, values), reverse=True)
  elif task == 'trace':
    traces = comp.trace(maxIter=100, tol=0.0)
    out.update(value=float(np.mean(traces)), probes=len(traces))
  elif task == 'slq':
    nodes, _ = comp.density(iter=100, n_v=1)
    out['values'] = [float(max(nodes[0]))]
  else:
    raise ValueError(f'pyhessian_worker: unknown task {task!r}')
  out['seconds'] = time.perf_counter() - t0
  return out


def main(path):
  torch.eig = _eig
  torch.set_num_threads(2)
  data = np.load(path)
  built = {}
  for line in sys.stdin:
    request = json.loads(line)
    dtype = request['dtype']
    if dtype not in built:
      built[dtype] = build(data, dtype)
    torch.set_default_dtype(getattr(torch, dtype))
    print(json.dumps(run(*built[dtype], request['task'])), flush=True)


if __name__ == '__main__':
  main(sys.argv[1])
