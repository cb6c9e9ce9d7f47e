"""EF, EF21 and EF21-W with top-k on logistic regression with heterogeneous smoothness: |grad f|^2 against bits.

The problem is the EF21 reference code's: f(x) = (1/n) sum_i f_i(x), f_i the logistic loss on worker i's rows plus
the non-convex regulariser lambda sum_k x_k^2 / (1 + x_k^2), full local gradients, x^0 = 0,
L_i = lambda_max(A_i^T A_i) / (4 m_i) + 2 lambda. Rows are split into n equal contiguous blocks after sorting
(``split='norm'``: by row norm, the feature-scale split; ``'label'``: by label), and worker i's features are
multiplied by s_i = spread^(i / (n - 1)), so L_max / L_min grows like spread^2 and L_QM / L_AM grows with it.
Each method runs with its theory step size (:func:`decentral.ef21_stepsize`: L_QM for EF21 and
classic EF, L_AM for EF21-W) times ``stepsize_multiplier``; the paper's claim is that EF21-W needs fewer bits to
reach |grad f|^2 < eps |grad f(x^0)|^2 and that the gain grows with the spread of the L_i.

Bytes are each worker's uplink, exact (k float32 values + k indices in the smallest unsigned integer holding d;
EF21's first round sends the dense gradient), from ``state.comm`` (:mod:`decentral.ledger`).
Data: a LIBSVM file (``--config.data_dir`` = the folder of ``<dataset>.txt`` or the file itself) or, by default, a
synthetic problem (Gaussian features, labels from a random linear model with 10% flips).
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from decentral import axis
from decentral import compression as comp
from experiments.lib.common import claims
from experiments.lib.common import data as data_lib
from experiments.lib.common import progress as progress_lib

PAPER = ('EF21-W (2402.10774): communication complexity with L_AM instead of L_QM; fewer bits to |grad f|^2 < eps, '
         'the gain growing with the spread of the L_i')




def _gain(outputs: dict) -> dict:
  rows = outputs['rows']  # the dispatcher's outputs
  return {'spreads': [r['spread'] for r in rows], 'qm_over_am': [r['L_QM/L_AM'] for r in rows],
          'gain': [r.get('gain_ef21_w') for r in rows],
          'final_ratio': [r.get('final_ratio_ef21_over_ef21_w') for r in rows]}


def _assess_gain(m) -> claims.Assessment:
  cells = [f"spread {s:g}: {'-' if g is None else f'{g:.2f}x'} (L_QM/L_AM {q:.2f})"
           for s, g, q in zip(m['spreads'], m['gain'], m['qm_over_am'])]
  ours = 'bits to eps, EF21 / EF21-W: ' + ', '.join(cells)
  gains = [g for g in m['gain'] if g is not None]
  if len(gains) < len(m['gain']):
    return claims.Assessment(ours, 'partly', 'EF21 or EF21-W did not reach eps at some spread')
  grows = all(b >= a - 1e-9 for a, b in zip(gains, gains[1:])) and gains[-1] > gains[0]
  tracks = all(abs(g / q - 1) <= 0.25 for g, q in zip(gains, m['qm_over_am']))
  if grows and min(gains) >= 1 - 1e-9 and tracks:
    return claims.Assessment(ours, 'agree', 'the gain is >= 1, grows with the spread and is within 25% of '
                             'L_QM/L_AM, the ratio of the two theory step sizes')
  if grows and min(gains) >= 1 - 1e-9:
    return claims.Assessment(ours, 'partly', 'the gain is >= 1 and grows with the spread, but is not close to '
                             'L_QM/L_AM')
  return claims.Assessment(ours, 'disagree', 'EF21-W does not need fewer bits as the spread grows')


CLAIMS = (
    claims.Claim(
        id='ef21_w_gain', experiment='communication', title='EF21-W gain over EF21',
        paper='Richtarik, Gasanov & Burlachenko 2024', arxiv='2402.10774',
        claim='weighting EF21 by the workers\' smoothness makes its communication complexity depend on the arithmetic '
              'mean L_AM of the L_i instead of their quadratic mean L_QM',
        paper_number='a speed-up of L_QM/L_AM (>= 1), growing with the spread of the L_i',
        measure=_gain, assess=_assess_gain, preset='medium', overrides={'experiment': 'ef21'}),
)


def load(config) -> tuple[np.ndarray, np.ndarray]:
  """(A, b) with b in {-1, +1}: the LIBSVM set, or the synthetic problem."""
  if config.data_dir:
    path = config.data_dir
    if os.path.isdir(path):
      path = os.path.join(path, f'{config.dataset}.txt')
    return data_lib.load_libsvm(path)
  rng = np.random.default_rng(config.seed)
  a = rng.normal(size=(config.synthetic_rows, config.synthetic_features)).astype(np.float32)
  b = np.sign(a @ rng.normal(size=config.synthetic_features) + 1e-12)
  b[rng.random(len(b)) < 0.1] *= -1
  return a, b.astype(np.float32)


def split(a, b, n, how, spread):
  """Stacked (n, m, d) features scaled per worker, (n, m) labels and the scales."""
  key = np.linalg.norm(a, axis=1) if how == 'norm' else b
  if how not in ('norm', 'label'):
    raise ValueError(f"split must be 'norm' or 'label', got {how!r}")
  order = np.argsort(key, kind='stable')
  m = len(order) // n
  idx = order[:n * m].reshape(n, m)
  scales = spread ** (np.arange(n) / max(n - 1, 1))
  return a[idx] * scales[:, None, None], b[idx], scales


def smoothness(a, lam) -> tuple[float, np.ndarray]:
  """(L of f, the L_i): lambda_max of the logistic Hessian bound plus 2 lambda (the reference code's constants)."""
  n, m, _ = a.shape
  a64 = a.astype(np.float64)
  L_i = np.array([np.linalg.eigvalsh(a64[i].T @ a64[i]).max() / (4 * m) for i in range(n)]) + 2 * lam
  gram = sum(a64[i].T @ a64[i] for i in range(n)) / (4 * m * n)
  return float(np.linalg.eigvalsh(gram).max() + 2 * lam), L_i


def _loss(x, a, b, lam):
  return jnp.mean(jnp.logaddexp(0.0, -b * (a @ x))) + lam * jnp.sum(x ** 2 / (1 + x ** 2))


def _transform(method, compressor, L_i):
  if method == 'gd':
    return comp.error_feedback(comp.identity(), axis_name='w')  # dense: e stays 0, counts d float32 per round
  if method == 'ef':
    return comp.error_feedback(compressor, axis_name='w')
  if method == 'ef21':
    return comp.ef21(compressor, axis_name='w')
  if method == 'ef21_w':
    return comp.ef21_w(compressor, L_i, axis_name='w')
  raise ValueError(f'unknown method {method!r}; known: gd, ef, ef21, ef21_w')


def run_method(method, config, a, b, L, L_i) -> dict:
  """One method's trajectory: |grad f(x^t)|^2 and cumulative bytes per worker, every ``log_every`` steps."""
  n, _, d = a.shape
  alpha = 1.0 if method == 'gd' else min(config.k / d, 1.0)
  gamma = config.stepsize_multiplier * comp.ef21_stepsize(L, L_i, alpha, weighted=method == 'ef21_w')
  tx = optax.chain(_transform(method, comp.top_k(config.k), L_i), optax.sgd(gamma))
  lam, every, chunks = config.lam, config.log_every, config.steps // config.log_every

  def worker(a, b):
    def step(carry, _):
      x, state = carry
      g = jax.grad(_loss)(x, a, b, lam)
      u, state = tx.update(g, state)
      return (x + u, state), (state[0].comm.sent, jax.lax.pmean(g, 'w'))

    def chunk(carry, _):
      carry, (sent, g) = jax.lax.scan(step, carry, None, length=every)
      return carry, (jnp.sum(sent), jnp.sum(g[0] ** 2))  # bytes in the chunk; |grad f|^2 at its first step

    x = jnp.zeros(d, jnp.float32)
    _, (sent, norms) = jax.lax.scan(chunk, (x, tx.init(x)), None, length=chunks)
    return sent, norms

  t0 = time.perf_counter()
  sent, norms = axis.run(worker, n, axis_name='w', backend=config.backend)(jnp.asarray(a), jnp.asarray(b))
  sent, norms = np.asarray(sent[0], np.int64), np.asarray(norms[0], np.float64)
  cum = np.concatenate([[0], np.cumsum(sent)[:-1]])  # bytes sent before the logged iterate
  hit = np.flatnonzero(norms < config.eps * norms[0])
  return {'method': method, 'gamma': gamma, 'steps': np.arange(chunks) * every, 'grad_norm_sq': norms,
          'bytes_per_worker': cum, 'bytes_to_eps': int(cum[hit[0]]) if len(hit) else None,
          'final_grad_norm_sq': float(norms[-1]), 'seconds': time.perf_counter() - t0}


def run(config, writer) -> list[dict]:
  """Every method at every spread; writes metrics.jsonl, results.json, table.txt and grad_norm_vs_bits.png."""
  a_all, b_all = load(config)
  rows, curves = [], []
  methods = [m.strip() for m in config.methods.split(',') if m.strip()]
  spreads = [float(s) for s in str(config.spreads).split(',')]
  progress = progress_lib.Progress(len(spreads) * len(methods), 'ef21', every=1, unit='run')
  for spread in spreads:
    a, b, _ = split(a_all, b_all, config.num_workers, config.split, spread)
    L, L_i = smoothness(a, config.lam)
    qm, am = float(np.sqrt(np.mean(L_i ** 2))), float(np.mean(L_i))
    row = {'spread': spread, 'L': L, 'L_QM': qm, 'L_AM': am, 'L_QM/L_AM': qm / am,
           'L_max/L_min': float(L_i.max() / L_i.min()), 'd': a.shape[2]}
    for method in methods:
      r = run_method(method, config, a, b, L, L_i)
      curves.append({'spread': spread, **r})
      writer.metrics([
          {'experiment': 'ef21', 'method': method, 'spread': spread, 'step': int(s), 'grad_norm_sq': float(g),
           'bytes_per_worker': int(c), 'bits_per_worker': 8 * int(c)}
          for s, g, c in zip(r['steps'], r['grad_norm_sq'], r['bytes_per_worker'])])
      row[f'{method}_gamma'] = r['gamma']
      row[f'{method}_final'] = r['final_grad_norm_sq']
      row[f'{method}_bytes_to_eps'] = r['bytes_to_eps']
      progress(len(curves), spread=spread, method=f'{method:<7}', gamma=r['gamma'],
               grad_norm_sq=f'{r["final_grad_norm_sq"]:.3e}', bytes_to_eps=r['bytes_to_eps'])
    if row.get('ef21_bytes_to_eps') and row.get('ef21_w_bytes_to_eps'):
      row['gain_ef21_w'] = row['ef21_bytes_to_eps'] / row['ef21_w_bytes_to_eps']
    if 'ef21_final' in row and 'ef21_w_final' in row:  # equal bytes: both send the same per round
      row['final_ratio_ef21_over_ef21_w'] = row['ef21_final'] / row['ef21_w_final']
    rows.append(row)
  writer.results({'rows': rows, 'paper': PAPER, 'eps': config.eps})
  writer.text(table(rows))
  writer.figure(plot(curves), 'grad_norm_vs_bits.png')
  return rows


def table(rows: list[dict]) -> str:
  """Per spread: L_QM/L_AM, each method's bytes per worker to |grad f|^2 < eps, EF21-W's gain over EF21."""
  methods = [k[:-len('_bytes_to_eps')] for k in rows[0] if k.endswith('_bytes_to_eps')] if rows else []
  head = f'{"spread":>7} {"Lmax/Lmin":>10} {"LQM/LAM":>8} ' + ' '.join(f'{m + " B":>12}' for m in methods)
  lines = [head + f' {"EF21-W gain":>12} {"final EF21/W":>13}']
  for r in rows:
    cells = ' '.join(f'{r[m + "_bytes_to_eps"] if r[m + "_bytes_to_eps"] is not None else "-":>12}'
                     for m in methods)
    gain = r.get('gain_ef21_w')
    final = r.get('final_ratio_ef21_over_ef21_w')
    lines.append(f'{r["spread"]:>7g} {r["L_max/L_min"]:>10.1f} {r["L_QM/L_AM"]:>8.3f} {cells} '
                 f'{(f"{gain:.2f}x" if gain else "-"):>12} {(f"{final:.2f}" if final else "-"):>13}')
  lines.append('(bytes per worker to reach |grad f|^2 < eps |grad f(x0)|^2, "-" if not reached; final EF21/W: '
               f'ratio of the last |grad f|^2 at equal bytes; {PAPER})')
  return '\n'.join(lines)


def plot(curves: list[dict]):
  import matplotlib.pyplot as plt
  spreads = sorted({c['spread'] for c in curves})
  fig, axes = plt.subplots(1, len(spreads), figsize=(4.5 * len(spreads), 3.6), squeeze=False)
  for ax, spread in zip(axes[0], spreads):
    for c in (c for c in curves if c['spread'] == spread):
      ax.loglog(np.maximum(8 * c['bytes_per_worker'], 1), c['grad_norm_sq'], label=c['method'])
    ax.set_title(f'spread {spread:g}')
    ax.set_xlabel('bits sent per worker')
    ax.set_ylabel(r'$\|\nabla f(x)\|^2$')
    ax.legend(fontsize=8)
  return fig
