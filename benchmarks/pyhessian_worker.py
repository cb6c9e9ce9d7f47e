"""Runs PyHessian (arXiv 1912.07145) on the problem saved by benchmarks/bench_curvature.py; prints one JSON line.

    /tmp/venv-pyhessian/bin/python benchmarks/pyhessian_worker.py problem.npz float32,float64

Run in a scratch venv (``pip install torch==2.13.0 pyhessian``), never imported by polyak. Tasks as PyHessian's
README calls them: ``eigenvalues(top_n=1)`` and ``top_n=10`` (power iteration, its defaults maxIter=100,
tol=1e-3), ``trace(maxIter=100, tol=0)`` (tol 0 makes it use all 100 probes), ``density(iter=100, n_v=1)``, and
one HVP of its stored graph. Each is timed once after a warm-up of the HVP. torch 2.x removed ``torch.eig``,
which ``density`` calls; :func:`_eig` puts back an equivalent for symmetric input.
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


def main(path, dtypes):
  torch.eig = _eig
  data = np.load(path)
  torch.set_num_threads(2)
  out = {}
  for dtype in dtypes.split(','):
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
    res = {}
    t0 = time.perf_counter()
    hessian_vector_product(comp.gradsH, comp.params, v)
    res['hvp'] = dict(seconds=time.perf_counter() - t0)
    for k in (1, 10):
      t0 = time.perf_counter()
      values, _ = comp.eigenvalues(top_n=k)
      res[f'top-{k}'] = dict(seconds=time.perf_counter() - t0, values=sorted(map(float, values), reverse=True))
    t0 = time.perf_counter()
    traces = comp.trace(maxIter=100, tol=0.0)
    res['trace'] = dict(seconds=time.perf_counter() - t0, value=float(np.mean(traces)), probes=len(traces))
    t0 = time.perf_counter()
    comp.density(iter=100, n_v=1)
    res['slq'] = dict(seconds=time.perf_counter() - t0)
    out[dtype] = res
  print(json.dumps(out))


if __name__ == '__main__':
  main(sys.argv[1], sys.argv[2])
