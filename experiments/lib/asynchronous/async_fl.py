"""Asynchronous FL under heterogeneous client speeds (Fraboni et al., arXiv 2206.10189): the bias of plain async
averaging toward fast clients on non-IID data, and the aggregation weights that remove it.

Setup (the paper's ``F-X`` scenario, small): scikit-learn's digits split over M clients by a Dirichlet(alpha)
label split (:func:`decentral.federated.partitions.dirichlet`), client i's nominal task time
tau_i = 1 - i (X / 100) / (M - 1) (client 0 the slowest), times jittered log-normally; softmax regression (convex,
so the federated optimum is well defined), each client task = ``local_steps`` SGD steps. Schemes
(:mod:`decentral.federated.asynchronous`): synchronous FedAvg, async FedAvg with identical weights (d_i = 1) and
with the speed-correcting weights (d_i = p_i / pi_i), FedBuff-K identical (1/K) and corrected, FedFix-Delta t
corrected, all for the same simulated time budget.

Measured on the federated objective F = sum_i p_i f_i (p uniform, f_i client i's mean training loss plus
l2/2 |W|^2, strongly convex), averaged over the last ``tail`` fraction of the simulated time: F - F* (w* from
full-batch gradient descent on F) and the bias, the mean excess loss f_i(w) - f_i(w*) of the slowest half of the
clients minus that of the fastest half: positive when the model leans toward the fast clients' data.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from decentral.federated import asynchronous as afl
from decentral.federated import partitions
from decentral.sim.clocks import Clock, linear_speeds
from experiments.lib.common import claims
from experiments.lib.common import data as data_lib

PAPER = ('Fraboni et al. (2206.10189): async FedAvg converges to the optimum of a surrogate weighting client i by '
         'its update frequency (1/tau_i); aggregation weights proportional to tau_i restore the federated optimum')

METHODS = {   # name -> (scheme, weights, extra schedule arguments)
    'sync': ('sync', 'participation', {}),
    'async_identical': ('async', 'identical', {}),
    'async_weight': ('async', 'participation', {}),
    'fedbuff_identical': ('fedbuff', 'identical', {'buffer': 'K'}),
    'fedbuff_weight': ('fedbuff', 'participation', {'buffer': 'K'}),
    'fedfix_weight': ('fedfix', 'participation', {'period': 'dt'}),
}


def _l2(w, l2):
  return 0.5 * l2 * jnp.sum(w['w'] ** 2)


def _loss_fn(l2):
  def loss(w, batch):
    logits = batch['x'] @ w['w'] + w['b']
    picked = jnp.take_along_axis(logits, batch['y'][:, None], 1)[:, 0]
    return jnp.mean(jax.nn.logsumexp(logits, -1) - picked) + _l2(w, l2)
  return loss


def problem(config):
  """(client data, per-client full losses f_i(w) fn, the per-client losses at the federated optimum w*, params)."""
  d = data_lib.load_digits(seed=0)
  x = d.x_train.reshape(len(d.x_train), -1).astype(np.float32)
  parts = partitions.dirichlet(d.y_train, config.num_clients, config.alpha, seed=config.seed, min_size=5)
  data = partitions.pad({'x': x, 'y': d.y_train}, parts)
  xs, ys, counts = jnp.asarray(data.arrays['x']), jnp.asarray(data.arrays['y']), jnp.asarray(data.counts)
  mask = (jnp.arange(xs.shape[1])[None] < counts[:, None]).astype(jnp.float32)

  @jax.jit
  def client_losses(w):
    logits = xs @ w['w'] + w['b']
    nll = jax.nn.logsumexp(logits, -1) - jnp.take_along_axis(logits, ys[..., None], -1)[..., 0]
    return jnp.sum(nll * mask, 1) / counts + _l2(w, config.l2)

  params = {'w': jnp.zeros((x.shape[1], 10)), 'b': jnp.zeros(10)}
  fed = jax.jit(jax.value_and_grad(lambda w: jnp.mean(client_losses(w))))
  w = params
  for _ in range(config.optimum_steps):   # F* by full-batch gradient descent (convex, smooth)
    _, g = fed(w)
    w = jax.tree.map(lambda a, b: a - 1.0 * b, w, g)
  return data, client_losses, np.asarray(client_losses(w)), params


def run_method(name, config, client, client_losses, params, seed):
  scheme, weights, extra = METHODS[name]
  kw = {'buffer': config.buffer} if extra.get('buffer') else {}
  if extra.get('period'):
    kw['period'] = config.period
  clock = Clock(config.num_clients, law='lognormal', scale=linear_speeds(config.num_clients, config.faster_percent),
                sigma=config.jitter, seed=seed)
  t0 = time.perf_counter()
  lr = config.async_server_lr if scheme == 'async' else config.server_lr
  _, history, trace = afl.run(params, client, clock=clock, scheme=scheme, total_time=config.total_time,
                              weights=weights, server_lr=lr, eval_fn=lambda w: np.asarray(client_losses(w)),
                              eval_every=config.eval_every, **kw)
  return {'method': name, 'history': history, 'steps': len(trace.steps),
          'mean_staleness': float(np.mean([x for s in trace.staleness() for x in s])) if trace.steps else 0.0,
          'seconds': time.perf_counter() - t0}


def summarize(r, config, at_optimum):
  """F - F* and the bias: mean of f_i(w) - f_i(w*) over the slow half of the clients minus over the fast half."""
  hist = r['history']
  times = np.array([h['time'] for h in hist])
  losses = np.stack([h['eval'] for h in hist])   # (evals, clients)
  tail = times >= (1 - config.tail) * config.total_time
  if not tail.any():   # no evaluation in the tail (a very short run): the last one
    tail[-1] = True
  excess = losses[tail].mean(0) - at_optimum
  half = config.num_clients // 2
  return {'F': float(losses[tail].mean()), 'F_minus_F_star': float(excess.mean()),
          'slow_minus_fast': float(excess[:half].mean() - excess[-half:].mean()),
          'steps': r['steps'], 'mean_staleness': r['mean_staleness']}


def run(config, writer) -> list[dict]:
  data, client_losses, at_optimum, params = problem(config)
  f_star = float(at_optimum.mean())
  methods = [m.strip() for m in config.methods.split(',') if m.strip()]
  per_seed = {m: [] for m in methods}
  for seed in range(config.seeds):
    client = afl.local_sgd_delta(_loss_fn(config.l2), data, local_steps=config.local_steps,
                                 batch_size=config.batch_size, learning_rate=config.local_lr, seed=seed)
    for m in methods:
      r = run_method(m, config, client, client_losses, params, seed)
      s = summarize(r, config, at_optimum)
      per_seed[m].append(s)
      writer.metrics([{'experiment': 'async_fl', 'method': m, 'seed': seed, 'time': h['time'], 'step': h['step'],
                       'F': float(np.mean(h['eval']))} for h in r['history']])
      print(f'seed {seed} {m:<18} F-F* {s["F_minus_F_star"]:.4f}  slow-fast {s["slow_minus_fast"]:+.4f}  '
            f'steps {s["steps"]}  ({r["seconds"]:.1f}s)', flush=True)
  rows = []
  for m in methods:
    vals = per_seed[m]
    row = {'method': m}
    for k in ('F', 'F_minus_F_star', 'slow_minus_fast', 'steps', 'mean_staleness'):
      arr = np.array([v[k] for v in vals], np.float64)
      row[k], row[k + '_std'] = float(arr.mean()), float(arr.std())
    rows.append(row)
  rows[0]['F_star'] = f_star
  writer.results({'rows': rows, 'paper': PAPER, 'F_star': f_star})
  writer.text(table(rows))
  return rows


def table(rows) -> str:
  head = f'{"method":<18} {"F - F*":>16} {"slow - fast loss":>18} {"server steps":>12} {"staleness":>9}'
  lines = [head]
  for r in rows:
    lines.append(f'{r["method"]:<18} {r["F_minus_F_star"]:>8.4f} ± {r["F_minus_F_star_std"]:.4f} '
                 f'{r["slow_minus_fast"]:>+9.4f} ± {r["slow_minus_fast_std"]:.4f} {r["steps"]:>12.0f} '
                 f'{r["mean_staleness"]:>9.2f}')
  return '\n'.join(lines)


def _bias(outputs) -> dict:
  rows = {r['method']: r for r in outputs['rows']}
  out = {}
  for m in ('async_identical', 'async_weight', 'sync'):
    if m in rows:
      out[m] = {k: rows[m][k] for k in ('F_minus_F_star', 'F_minus_F_star_std', 'slow_minus_fast',
                                          'slow_minus_fast_std')}
  return out


def _assess_bias(m) -> claims.Assessment:
  ident, weight = m['async_identical'], m['async_weight']
  ours = (f"async identical: F-F* {ident['F_minus_F_star']:.4f}, slow-fast {ident['slow_minus_fast']:+.4f}; "
          f"speed-corrected: F-F* {weight['F_minus_F_star']:.4f}, slow-fast {weight['slow_minus_fast']:+.4f}")
  spread = ident['F_minus_F_star_std'] + weight['F_minus_F_star_std']
  better = ident['F_minus_F_star'] - weight['F_minus_F_star'] > spread
  gap = ident['slow_minus_fast'] > 0 and abs(weight['slow_minus_fast']) < ident['slow_minus_fast'] - (
      ident['slow_minus_fast_std'] + weight['slow_minus_fast_std'])
  if better and gap:
    return claims.Assessment(ours, 'agree', 'uncorrected async favours the fast clients (slow clients\' loss '
                             'higher) and sits further from the federated optimum; the speed weights shrink both '
                             'beyond the seed spread')
  if better or gap:
    return claims.Assessment(ours, 'partly', 'only one of the two effects (distance to F*, slow-fast gap) is '
                             'beyond the seed spread')
  return claims.Assessment(ours, 'disagree', 'the speed-correcting weights do not reduce the bias here')


def _fedfix(outputs) -> dict:
  rows = {r['method']: r for r in outputs['rows']}
  return {m: {'F_minus_F_star': rows[m]['F_minus_F_star'], 'std': rows[m]['F_minus_F_star_std']}
          for m in ('sync', 'async_identical', 'fedfix_weight') if m in rows}


def _assess_fedfix(m) -> claims.Assessment:
  fix, sync, asyn = m['fedfix_weight'], m['sync'], m['async_identical']
  ours = (f"F-F* at equal simulated time: FedFix {fix['F_minus_F_star']:.4f} ± {fix['std']:.4f}, sync FedAvg "
          f"{sync['F_minus_F_star']:.4f} ± {sync['std']:.4f}, async {asyn['F_minus_F_star']:.4f} ± {asyn['std']:.4f}")
  faster = fix['F_minus_F_star'] + fix['std'] < sync['F_minus_F_star'] - sync['std']
  steadier = fix['std'] < asyn['std']
  if faster and steadier:
    return claims.Assessment(ours, 'agree', 'FedFix is ahead of sync FedAvg at the same simulated time, with a '
                             'smaller seed spread than uncorrected async FedAvg')
  if faster:
    return claims.Assessment(ours, 'partly', 'FedFix is faster than sync FedAvg but not steadier than async')
  return claims.Assessment(ours, 'disagree', 'FedFix is not faster than sync FedAvg in simulated time')


CLAIMS = (
    claims.Claim(
        id='async_fl_speed_bias', experiment='asynchronous', title='Async FedAvg: speed weights remove the bias',
        paper='Fraboni, Vidal, Kameni & Lorenzi 2022', arxiv='2206.10189',
        claim='plain asynchronous FedAvg converges to a surrogate optimum biased toward fast clients on non-IID '
              'data; the stochastic aggregation weights d_i ~ tau_i p_i remove the bias',
        paper_number='qualitative (their Figure: async FedAvg unstable and biased; the weighted variant and FedFix '
                     'reach the federated optimum)',
        measure=_bias, assess=_assess_bias, overrides={'experiment': 'async_fl'}),
    claims.Claim(
        id='fedfix_wallclock', experiment='asynchronous', title='FedFix against sync and async FedAvg',
        paper='Fraboni, Vidal, Kameni & Lorenzi 2022', arxiv='2206.10189',
        claim='FedFix (fixed-time aggregation) keeps the stability of synchronous FedAvg with the wall-clock speed '
              'of asynchronous FedAvg',
        paper_number='qualitative (FedFix faster than FedAvg in time, steadier than async FedAvg)',
        measure=_fedfix, assess=_assess_fedfix, overrides={'experiment': 'async_fl'}),
)
