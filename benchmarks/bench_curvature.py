"""Curvature primitives on PyHessian's MLP: one HVP, top-1/top-10 eigenvalues, Hutchinson trace, SLQ density.

    python benchmarks/bench_curvature.py                         # float32 and float64, PyHessian when installed
    python benchmarks/bench_curvature.py --dtypes=float64 --rounds=2 --record

The problem of PyHessian (arXiv 1912.07145): an MLP 784-128-128-10 with tanh (118,282 parameters) and the mean
cross-entropy over 1,000 inputs (the first 1,000 MNIST test images when /work/shared/data/mnist is present,
Gaussian inputs otherwise). Each task is jitted once and timed as the best of ``--rounds`` runs after a warm-up.
``before`` is the previous Lanczos (reorthogonalisation against the whole basis and the restart vector computed
at every step), kept here only as the baseline. Eigenvalue errors are relative to ARPACK
(``scipy.sparse.linalg.eigsh``, float64, on the same HVP). When /tmp/venv-pyhessian holds torch and pyhessian,
``benchmarks/pyhessian_worker.py`` runs PyHessian on the same weights and data. ``--record`` writes
benchmarks/results/curvature.json. Not a test.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import pathlib
import platform
import subprocess
import tempfile
import time

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.sparse.linalg

from optim.primitives import curvature, estimators, spectral

_DTYPES = flags.DEFINE_list('dtypes', ['float32', 'float64'], 'Precisions to run.')
_ROUNDS = flags.DEFINE_integer('rounds', 3, 'Timed runs per task (best is reported).')
_TOP1_STEPS = flags.DEFINE_integer('top1_steps', 20, 'Lanczos steps for the top eigenvalue.')
_TOP10_STEPS = flags.DEFINE_integer('top10_steps', 100, 'Lanczos steps for the top-10 eigenvalues.')
_SLQ_STEPS = flags.DEFINE_integer('slq_steps', 100, 'Lanczos steps of the SLQ density (one probe).')
_PROBES = flags.DEFINE_integer('probes', 100, 'Hutchinson probes for the trace.')
_PYHESSIAN = flags.DEFINE_string('pyhessian_python', '/tmp/venv-pyhessian/bin/python',
                                 'Python of a scratch venv with torch and pyhessian (skipped when absent).')
_RECORD = flags.DEFINE_bool('record', False, 'Write benchmarks/results/curvature.json.')

HERE = pathlib.Path(__file__).resolve().parent
MNIST = pathlib.Path('/work/shared/data/mnist')
SIZES = (784, 128, 128, 10)


def load_problem(num_inputs: int = 1000, seed: int = 0):
  """Weights (torch's default uniform init), inputs in [0, 1] and integer labels, as float64 numpy arrays."""
  rng = np.random.default_rng(seed)
  if (MNIST / 't10k-images-idx3-ubyte.gz').exists():
    with gzip.open(MNIST / 't10k-images-idx3-ubyte.gz') as f:
      x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)[:num_inputs] / 255.0
    with gzip.open(MNIST / 't10k-labels-idx1-ubyte.gz') as f:
      y = np.frombuffer(f.read(), np.uint8, offset=8)[:num_inputs].astype(np.int64)
    source = 'MNIST test[:1000]'
  else:
    x, y, source = rng.normal(size=(num_inputs, 784)), rng.integers(0, 10, num_inputs), 'Gaussian inputs'
  params = {}
  for i, (fan_in, fan_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
    bound = 1.0 / math.sqrt(fan_in)
    params[f'w{i}'] = rng.uniform(-bound, bound, (fan_in, fan_out))
    params[f'b{i}'] = rng.uniform(-bound, bound, fan_out)
  return params, x, y, source


def loss_fn(params, x, y):
  h = x
  for i in range(len(SIZES) - 1):
    h = h @ params[f'w{i}'] + params[f'b{i}']
    h = jnp.tanh(h) if i < len(SIZES) - 2 else h
  return optax.softmax_cross_entropy_with_integer_labels(h, y).mean()


def lanczos_before(mv, v0, key, num_steps):
  """The previous Lanczos loop: CGS2 against all m rows every step, restart vector always computed."""
  n, dtype = v0.size, v0.dtype
  tol = 10.0 * math.sqrt(n) * jnp.finfo(dtype).eps
  orth = lambda x, b: (lambda x: x - b.T @ (b @ x))(x - b.T @ (b @ x))
  basis = jnp.zeros((num_steps, n), dtype).at[0].set(v0 / jnp.linalg.norm(v0))
  spare = jax.random.normal(key, (n,), dtype)

  def step(j, carry):
    basis, alphas, betas = carry
    w = mv(basis[j])
    alpha = jnp.vdot(basis[j], w)
    r = orth(w, basis)
    beta = jnp.linalg.norm(r)
    broken = beta <= tol * jnp.linalg.norm(w)
    fresh = orth(jnp.roll(spare, j), basis)
    nxt = jnp.where(broken, fresh / jnp.linalg.norm(fresh), r / jnp.where(broken, 1.0, beta))
    basis = basis.at[j + 1].set(nxt, mode='drop')
    return basis, alphas.at[j].set(alpha), betas.at[j].set(jnp.where(broken, 0.0, beta))

  init = (basis, jnp.zeros(num_steps, dtype), jnp.zeros(num_steps, dtype))
  _, alphas, betas = jax.lax.fori_loop(0, num_steps, step, init)
  return alphas, betas[:-1]


def tasks(x, y):
  """name -> jitted f(params, key) for the tasks; ``*_before`` use the previous Lanczos."""
  mv_of = lambda p: curvature.hessian_matvec(loss_fn, p, x, y)

  def top(p, key, steps, k, old=False):
    if old:
      mv, flat, _ = curvature.flatten_matvec(mv_of(p), p)
      alphas, betas = lanczos_before(mv, jax.random.normal(key, flat.shape, flat.dtype), key, steps)
      return jnp.linalg.eigvalsh(spectral.tridiagonal(alphas, betas))[-k:]
    return spectral.ritz(spectral.lanczos(mv_of(p), p, key, steps))[0][-k:]

  def slq_before(p, key):
    mv, flat, _ = curvature.flatten_matvec(mv_of(p), p)
    v0 = jax.random.rademacher(key, flat.shape, dtype=flat.dtype)
    alphas, betas = lanczos_before(mv, v0, key, _SLQ_STEPS.value)
    return jnp.linalg.eigh(spectral.tridiagonal(alphas, betas))[0]

  return {
      'hvp': jax.jit(lambda p, key: curvature.hvp(loss_fn, p, p, x, y)),
      'top-1': jax.jit(lambda p, key: top(p, key, _TOP1_STEPS.value, 1)),
      'top-1 before': jax.jit(lambda p, key: top(p, key, _TOP1_STEPS.value, 1, old=True)),
      'top-10': jax.jit(lambda p, key: top(p, key, _TOP10_STEPS.value, 10)),
      'top-10 before': jax.jit(lambda p, key: top(p, key, _TOP10_STEPS.value, 10, old=True)),
      'trace': jax.jit(lambda p, key: estimators.hutchinson_trace(mv_of(p), p, key, _PROBES.value)[0]),
      'slq': jax.jit(lambda p, key: spectral.slq(mv_of(p), p, key, _SLQ_STEPS.value, 1).nodes[0]),
      'slq before': jax.jit(slq_before),
  }


def best_time(fn, *args):
  out = jax.block_until_ready(fn(*args))  # compile and warm up
  times = []
  for _ in range(_ROUNDS.value):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t0)
  return min(times), out


def arpack_reference(params, x, y, k=10):
  """Top-k eigenvalues by ARPACK (float64) on the same HVP; the oracle of every eigenvalue error."""
  p = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
  mv, flat, _ = curvature.flatten_matvec(curvature.hessian_matvec(loss_fn, p, jnp.asarray(x), jnp.asarray(y)), p)
  mv = jax.jit(mv)
  op = scipy.sparse.linalg.LinearOperator((flat.size, flat.size), matvec=lambda v: np.asarray(mv(jnp.asarray(v))),
                                          dtype=np.float64)
  t0 = time.perf_counter()
  values = scipy.sparse.linalg.eigsh(op, k=k, which='LA', tol=1e-10, return_eigenvectors=False)
  return np.sort(values)[::-1], time.perf_counter() - t0


def run_pyhessian(params, x, y):
  """Times and results of PyHessian on the same weights and data, or None when its venv is absent."""
  python = pathlib.Path(_PYHESSIAN.value)
  if not python.exists():
    return None
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, 'problem.npz')
    np.savez(path, x=x, y=y, **params)
    out = subprocess.run([str(python), str(HERE / 'pyhessian_worker.py'), path, ','.join(_DTYPES.value)],
                         capture_output=True, text=True, check=False)
  if out.returncode != 0:
    print('PyHessian worker failed:', out.stderr[-2000:])
    return None
  return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv):
  del argv
  jax.config.update('jax_enable_x64', True)
  params, x, y, source = load_problem()
  reference, arpack_s = arpack_reference(params, x, y)
  anchor = run_pyhessian(params, x, y)
  rows = []
  for dtype in _DTYPES.value:
    p = jax.tree.map(lambda a: jnp.asarray(a, dtype), params)
    fns = tasks(jnp.asarray(x, dtype), jnp.asarray(y))
    for name, fn in fns.items():
      seconds, out = best_time(fn, p, jax.random.key(0))
      err = None
      if name.startswith('top'):
        k = len(out)
        err = float(np.max(np.abs(np.sort(np.asarray(out, np.float64))[::-1] - reference[:k]) / reference[:k]))
      row = dict(dtype=dtype, task=name, seconds=seconds, rel_error=err)
      if anchor and dtype in anchor:
        theirs = anchor[dtype].get(name.split(' ')[0], {})
        row['pyhessian_s'] = theirs.get('seconds')
        if 'values' in theirs:
          k = len(theirs['values'])
          errors = np.abs(np.asarray(theirs['values']) - reference[:k]) / reference[:k]
          row['pyhessian_rel_error'] = float(np.max(errors))
      rows.append(row)
  load = os.getloadavg()
  print(f'{sum(a.size for a in params.values()):,} parameters, {source}, {jax.devices()[0].platform}, '
        f'best of {_ROUNDS.value}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}')
  print(f'ARPACK top-10 (float64, {arpack_s:.1f} s): ' + ' '.join(f'{v:.4g}' for v in reference))
  befores = {(r['dtype'], r['task']): r['seconds'] for r in rows if r['task'].endswith('before')}
  print(f'{"dtype":>8s} {"task":>14s} {"seconds":>9s} {"rel.err":>9s} {"vs before":>9s} {"PyHessian s":>11s} '
        f'{"PyH err":>9s} {"speed-up":>8s}')
  for r in rows:
    before = befores.get((r['dtype'], r['task'] + ' before'))
    ph = r.get('pyhessian_s')
    fmt = lambda v, f: format(v, f) if v is not None else '-'
    print(f'{r["dtype"]:>8s} {r["task"]:>14s} {r["seconds"]:9.4f} {fmt(r["rel_error"], "9.1e"):>9s} '
          f'{fmt(before and before / r["seconds"], "9.1f"):>9s} {fmt(ph, "11.4f"):>11s} '
          f'{fmt(r.get("pyhessian_rel_error"), "9.1e"):>9s} {fmt(ph and ph / r["seconds"], "8.1f"):>8s}')
  if _RECORD.value:
    record = dict(jax=jax.__version__, platform=platform.platform(), cpus=os.cpu_count(), source=source,
                  date=time.strftime('%Y-%m-%d'), load_average=[round(v, 2) for v in load],
                  arpack_top10=reference.tolist(), rows=rows)
    (HERE / 'results' / 'curvature.json').write_text(json.dumps(record, indent=1) + '\n')


if __name__ == '__main__':
  app.run(main)
