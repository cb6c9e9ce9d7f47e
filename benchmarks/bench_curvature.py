"""Curvature primitives on PyHessian's MLP: one HVP, top-1/top-10 eigenvalues, Hutchinson trace, SLQ density.

    python benchmarks/bench_curvature.py                         # float32 and float64, PyHessian when installed
    python benchmarks/bench_curvature.py --dtypes=float64 --rounds=2 --record

The problem of PyHessian (arXiv 1912.07145): an MLP 784-128-128-10 with tanh (118,282 parameters) and the mean
cross-entropy over 1,000 inputs (the first 1,000 MNIST test images when /work/shared/data/mnist is present,
Gaussian inputs otherwise). The tasks, PyHessian's on the left:

* ``hvp``: one product with the stored graph (``hessian_vector_product(gradsH, ...)``) against one with the
  stored linearisation (``optim.hessian_matvec``, built once outside the timing as PyHessian's graph is);
* ``top-1``, ``top-10``: power iteration with deflation (tol 1e-3, at most 100 iterations per eigenvalue) against
  Lanczos stopped on the Ritz residuals (``--tol``, at most ``--top1_steps`` / ``--top10_steps`` steps);
* ``trace``: 100 Hutchinson probes, one by one on both sides (``--trace_batch`` vmaps blocks of them);
* ``slq``: ``density(iter=100, n_v=1)`` against ``optim.slq`` with 100 steps and one probe (both fully
  reorthogonalised); its error is that of the largest node, which converges to the top eigenvalue.

Eigenvalue errors are relative to ARPACK (``scipy.sparse.linalg.eigsh``, float64, on the same HVP), for both
libraries: polyak's against the largest eigenvalues, PyHessian's against the largest in magnitude, which is what
its power iteration computes (on this Hessian, three of the ten largest in magnitude are negative). When
/tmp/venv-pyhessian holds torch and pyhessian, ``benchmarks/pyhessian_worker.py`` runs PyHessian on the same
weights and data in a second process, task by task between polyak's runs (the machine may be shared:
each side gets ``--rounds`` interleaved runs, best kept; PyHessian stops repeating a task once one run took over
``--pyhessian_max_s``). ``previous`` is polyak's time stored in benchmarks/results/curvature.json, so that a
regression shows; ``--record`` rewrites that file. Not a test.
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
_TASKS = flags.DEFINE_list('tasks', ['hvp', 'top-1', 'top-10', 'trace', 'slq'], 'Tasks to run.')
_ROUNDS = flags.DEFINE_integer('rounds', 3, 'Timed runs per task and library, interleaved (best is reported).')
_TOL = flags.DEFINE_float('tol', 1e-2, 'Relative Ritz-residual tolerance of the top-k Lanczos.')
_TOP1_STEPS = flags.DEFINE_integer('top1_steps', 30, 'Most Lanczos steps for the top eigenvalue.')
_TOP10_STEPS = flags.DEFINE_integer('top10_steps', 100, 'Most Lanczos steps for the top-10 eigenvalues.')
_SLQ_STEPS = flags.DEFINE_integer('slq_steps', 100, 'Lanczos steps of the SLQ density (one probe).')
_PROBES = flags.DEFINE_integer('probes', 100, 'Hutchinson probes for the trace.')
_TRACE_BATCH = flags.DEFINE_integer('trace_batch', 0, 'Hutchinson probes vmapped together (0: one at a time).')
_PYHESSIAN = flags.DEFINE_string('pyhessian_python', '/tmp/venv-pyhessian/bin/python',
                                 'Python of a scratch venv with torch and pyhessian (skipped when absent).')
_PYHESSIAN_MAX_S = flags.DEFINE_float('pyhessian_max_s', 60.0,
                                      'PyHessian repeats a task only while its runs take less than this.')
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


def tasks(x, y):
  """name -> f(params, key) for polyak's side of each task (``hvp`` builds its linearisation untimed, first)."""
  mv_of = lambda p: curvature.hessian_matvec(loss_fn, p, x, y)

  def top(k, steps):
    run = lambda p, key: spectral.lanczos(mv_of(p), p, key, steps, tol=_TOL.value, k=k)
    return jax.jit(lambda p, key: spectral.ritz(run(p, key))[0][-k:])

  def hvp(p, key):
    del key
    mv = mv_of(p)  # eager: jitted linearisation, then jitted products on it
    return lambda: mv(p)

  return {
      'hvp': hvp,
      'top-1': top(1, _TOP1_STEPS.value),
      'top-10': top(10, _TOP10_STEPS.value),
      'trace': jax.jit(lambda p, key: estimators.hutchinson_trace(mv_of(p), p, key, _PROBES.value,
                                                                  batch_size=_TRACE_BATCH.value or None)[0]),
      'slq': jax.jit(lambda p, key: spectral.slq(mv_of(p), p, key, _SLQ_STEPS.value, 1).nodes[0]),
  }


class PyHessian:
  """The worker process (benchmarks/pyhessian_worker.py) in the scratch venv, asked one task at a time."""

  def __init__(self, python, params, x, y):
    self._tmp = tempfile.TemporaryDirectory()
    path = os.path.join(self._tmp.name, 'problem.npz')
    np.savez(path, x=x, y=y, **params)
    self._proc = subprocess.Popen([str(python), str(HERE / 'pyhessian_worker.py'), path], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

  def run(self, dtype, task):
    self._proc.stdin.write(json.dumps(dict(dtype=dtype, task=task)) + '\n')
    self._proc.stdin.flush()
    line = self._proc.stdout.readline()
    if not line:
      raise RuntimeError(f'PyHessian worker exited during {dtype} {task}')
    return json.loads(line)

  def close(self):
    self._proc.stdin.close()
    self._proc.wait()
    self._tmp.cleanup()


def timed(fn, *args):
  t0 = time.perf_counter()
  out = jax.block_until_ready(fn(*args))
  return time.perf_counter() - t0, out


def arpack_reference(params, x, y, k=10):
  """Top-k eigenvalues by ARPACK (float64) on the same HVP, the oracle of every eigenvalue error: the largest
  (``which='LA'``, what the Lanczos top-k returns) and the largest in magnitude (``'LM'``, what PyHessian's power
  iteration returns; this Hessian has eigenvalues near -0.69 among its ten largest in magnitude)."""
  p = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
  mv, flat, _ = curvature.flatten_matvec(curvature.hessian_matvec(loss_fn, p, jnp.asarray(x), jnp.asarray(y)), p)
  mv = jax.jit(mv)
  op = scipy.sparse.linalg.LinearOperator((flat.size, flat.size), matvec=lambda v: np.asarray(mv(jnp.asarray(v))),
                                          dtype=np.float64)
  t0 = time.perf_counter()
  largest = scipy.sparse.linalg.eigsh(op, k=k, which='LA', tol=1e-10, return_eigenvectors=False)
  seconds = time.perf_counter() - t0
  magnitude = scipy.sparse.linalg.eigsh(op, k=k, which='LM', tol=1e-10, return_eigenvectors=False)
  return np.sort(largest)[::-1], magnitude[np.argsort(-np.abs(magnitude))], seconds


def relative_error(values, reference, by_magnitude=False):
  """Largest relative error of the top values against ARPACK's (descending, or by descending magnitude); of the
  largest alone for SLQ nodes."""
  values = np.asarray(values, np.float64).ravel()
  values = values[np.argsort(-np.abs(values))] if by_magnitude else np.sort(values)[::-1]
  k = 1 if len(values) > len(reference) else len(values)
  return float(np.max(np.abs(values[:k] - reference[:k]) / np.abs(reference[:k])))


def measure(task, dtype, ours, pyhessian, p, key, reference, magnitude):
  """Interleaved runs of one task: polyak, then PyHessian, ``--rounds`` times; best time of each."""
  if task == 'hvp':
    ours = ours(p, key)
    call = ours
  else:
    call = lambda: ours(p, key)
  _, out = timed(call)  # compile and warm up
  mine, theirs, answer = [], [], {}
  for _ in range(_ROUNDS.value):
    mine.append(timed(call)[0])
    if pyhessian and (not theirs or theirs[-1] < _PYHESSIAN_MAX_S.value):
      answer = pyhessian.run(dtype, task)
      theirs.append(answer['seconds'])
  row = dict(dtype=dtype, task=task, seconds=min(mine), rel_error=None)
  if task.startswith('top') or task == 'slq':
    row['rel_error'] = relative_error(out, reference)
  if task == 'trace':
    row['value'] = float(out)
  if theirs:
    row.update(pyhessian_s=min(theirs), pyhessian_runs=len(theirs), pyhessian_rel_error=None)
    if 'values' in answer:
      by_magnitude = task.startswith('top')
      row['pyhessian_rel_error'] = relative_error(answer['values'], magnitude if by_magnitude else reference,
                                                  by_magnitude)
    if 'value' in answer:
      row.update(pyhessian_value=answer['value'], pyhessian_probes=answer['probes'])
  return row


def main(argv):
  del argv
  jax.config.update('jax_enable_x64', True)
  params, x, y, source = load_problem()
  reference, magnitude, arpack_s = arpack_reference(params, x, y)
  stored = HERE / 'results' / 'curvature.json'
  previous = {}
  if stored.exists():
    previous = {(r['dtype'], r['task']): r['seconds'] for r in json.loads(stored.read_text())['rows']}
  python = pathlib.Path(_PYHESSIAN.value)
  pyhessian = PyHessian(python, params, x, y) if python.exists() else None
  rows = []
  try:
    for dtype in _DTYPES.value:
      p = jax.tree.map(lambda a: jnp.asarray(a, dtype), params)
      fns = tasks(jnp.asarray(x, dtype), jnp.asarray(y))
      for task in _TASKS.value:
        rows.append(measure(task, dtype, fns[task], pyhessian, p, jax.random.key(0), reference, magnitude))
  finally:
    if pyhessian:
      pyhessian.close()
  load = os.getloadavg()
  print(f'{sum(a.size for a in params.values()):,} parameters, {source}, {jax.devices()[0].platform}, '
        f'best of {_ROUNDS.value} interleaved; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}')
  print(f'ARPACK top-10 (float64, {arpack_s:.1f} s): ' + ' '.join(f'{v:.4g}' for v in reference))
  print('ARPACK top-10 in magnitude (the reference of PyHessian\'s errors): ' + ' '.join(f'{v:.4g}' for v in magnitude))
  print(f'{"dtype":>8s} {"task":>7s} {"seconds":>9s} {"rel.err":>9s} {"previous":>9s} {"PyHessian s":>11s} '
        f'{"PyH err":>9s} {"speed-up":>8s}')
  fmt = lambda v, f: format(v, f) if v is not None else '-'
  for r in rows:
    ph = r.get('pyhessian_s')
    print(f'{r["dtype"]:>8s} {r["task"]:>7s} {r["seconds"]:9.4f} {fmt(r["rel_error"], "9.1e"):>9s} '
          f'{fmt(previous.get((r["dtype"], r["task"])), "9.4f"):>9s} {fmt(ph, "11.4f"):>11s} '
          f'{fmt(r.get("pyhessian_rel_error"), "9.1e"):>9s} {fmt(ph and ph / r["seconds"], "8.1f"):>8s}')
  if _RECORD.value:
    record = dict(jax=jax.__version__, platform=platform.platform(), cpus=os.cpu_count(), source=source,
                  date=time.strftime('%Y-%m-%d'), load_average=[round(v, 2) for v in load],
                  arpack_top10=reference.tolist(), arpack_top10_magnitude=magnitude.tolist(), tol=_TOL.value,
                  rows=rows)
    stored.write_text(json.dumps(record, indent=1) + '\n')


if __name__ == '__main__':
  app.run(main)
