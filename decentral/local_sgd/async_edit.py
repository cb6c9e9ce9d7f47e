"""A-EDiT: asynchronous EDiT in simulated time, on the host-side event simulator.

Workers of different speeds train without waiting; every ``sync_time`` of simulated time they synchronise
(skipping the round when fewer than ``min_total_steps`` steps were taken) with EDiT's pseudo-gradient penalty
(:mod:`decentral.local_sgd.penalty`); optional step weights mix each worker's share of the steps into the
weights. :func:`run_a_edit` drives jitted per-event steps from :func:`decentral.sim.run_time_triggered`.

Conventions from the authors' atorch code (``atorch/local_sgd``): the step weight of a worker is its total step
count over the sum of all workers' (atorch's ``global_step / all_reduce(global_step)``).

Wall-clock: a sync is not free. EDiT synchronises layer by layer during the forward pass of the sync step (Cheng
et al., arXiv 2412.07210, Section 3): the sync of layer l (pseudo-gradient all-reduce and outer step) must end
before layer l's forward, and runs on a communication stream while earlier layers compute.
:func:`layerwise_sync_schedule` is that schedule as a cost model (per-layer forward and sync times in, the
timeline and the sync step's extra time out); ``run_a_edit(..., sync_cost=...)`` charges it on the event
simulator, and ``steps_per_round`` runs EDiT's synchronous step-triggered rounds on the same clock, so A-EDiT's
wall-clock advantage over EDiT is measured (experiments/edit_wallclock.py).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from decentral import axis
from decentral.local_sgd.core import default_outer, pseudo_gradient
from decentral.local_sgd.penalty import (EDIT_OUTER_MOMENTUM, EWMAState, PenaltyConfig, check_config, ewma_init,
                                         penalized_reduce, penalty_bytes)
from decentral.sim import events

PyTree = Any


class AEDiTSync(NamedTuple):
  """The per-worker state A-EDiT keeps between syncs (the inner state lives with the worker)."""

  anchor: PyTree
  outer_state: tuple
  detectors: EWMAState


def _a_edit_sync_fn(outer, cfg, step_weight_ratio, use_step_weight, axis_name):
  def sync(params, state: AEDiTSync, steps):
    delta = pseudo_gradient(state.anchor, params)
    step_weight = None
    if use_step_weight:
      step_weight = steps.astype(jnp.float32) / lax.psum(steps.astype(jnp.float32), axis_name)
    reduced, detectors, keep, rejected = penalized_reduce(delta, state.detectors, cfg, axis_name,
                                                          step_weight=step_weight,
                                                          step_weight_ratio=step_weight_ratio)
    leaves, treedef = jax.tree.flatten(state.anchor)
    new_leaves, new_states = [], []
    for a, g, s, k in zip(leaves, treedef.flatten_up_to(reduced), state.outer_state, keep):
      u, s_new = outer.update(g.astype(a.dtype), s, a)
      new_leaves.append(jnp.where(k, optax.apply_updates(a, u), a))
      new_states.append(jax.tree.map(lambda x, y: jnp.where(k, x, y), s_new, s))
    anchor = jax.tree.unflatten(treedef, new_leaves)
    return anchor, AEDiTSync(anchor, tuple(new_states), detectors), rejected
  return sync


def layerwise_sync_schedule(forward_times: Sequence[float], sync_times: Sequence[float], *, overlap: bool = True,
                            prefetch: int = 1) -> dict:
  """EDiT's layer-wise synchronisation during the forward pass of a sync step, as a two-stream cost model.

  Layers l = 0..L-1 run forward in order on the compute stream (``forward_times[l]``); the sync of layer l
  (``sync_times[l]``: its pseudo-gradient all-reduce and outer step) runs on one communication stream, in layer
  order, and must end before layer l's forward starts. With ``overlap`` (EDiT), the sync of layer l is issued
  when the forward of layer ``l - prefetch`` starts (layers ``< prefetch`` at time 0), so it hides behind
  earlier layers' compute:

      comm_start[l] = max(comm_end[l-1], fwd_start[l - prefetch]),  comm_end[l] = comm_start[l] + s_l,
      fwd_start[l] = max(fwd_end[l-1], comm_end[l]),                 fwd_end[l] = fwd_start[l] + f_l.

  Without overlap (a blocking sync before the forward, as DiLoCo's), every sync precedes all compute:
  the forward ends at ``sum(s) + sum(f)``.

  Args:
    forward_times: per-layer forward times f_l.
    sync_times: per-layer sync times s_l (bytes / bandwidth + latency of that layer's all-reduce).
    overlap: EDiT's layer-wise overlap (True) or a blocking sync (False).
    prefetch: how many layers ahead the communication stream may run (FSDP's forward prefetch: 1).

  Returns:
    A dict with the per-layer ``comm_start``, ``comm_end``, ``fwd_start``, ``fwd_end`` (numpy arrays), the sync
    step's ``forward`` time and its ``overhead`` over a plain forward (``forward - sum(f)``): the ``sync_cost``
    to charge per sync in :func:`run_a_edit`.

  >>> s = layerwise_sync_schedule([1.0, 1.0, 1.0], [0.5, 0.5, 0.5])
  >>> float(s['forward']), float(s['overhead'])   # only the first layer's sync is exposed
  (3.5, 0.5)
  >>> float(layerwise_sync_schedule([1.0, 1.0, 1.0], [0.5, 0.5, 0.5], overlap=False)['overhead'])
  1.5
  """
  f = np.asarray(forward_times, np.float64)
  c = np.asarray(sync_times, np.float64)
  if f.ndim != 1 or f.shape != c.shape or f.size == 0:
    raise ValueError(f'layerwise_sync_schedule: forward_times and sync_times must be equal-length 1-d, got '
                     f'{f.shape} and {c.shape}')
  if np.any(~np.isfinite(f)) or np.any(f < 0) or np.any(~np.isfinite(c)) or np.any(c < 0):
    raise ValueError('layerwise_sync_schedule: times must be finite and >= 0')
  if not isinstance(prefetch, int) or prefetch < 1:
    raise ValueError(f'layerwise_sync_schedule: prefetch must be an int >= 1, got {prefetch!r}')
  if not overlap:  # every sync, back to back, then the whole forward
    comm_end = np.cumsum(c)
    fwd_end = comm_end[-1] + np.cumsum(f)
    comm_start, fwd_start = comm_end - c, fwd_end - f
  else:  # the streams are coupled (a sync is issued when an earlier layer starts computing): layer by layer
    comm_start, comm_end, fwd_start, fwd_end = (np.zeros(f.size) for _ in range(4))
    for l in range(f.size):
      issue = fwd_start[l - prefetch] if l >= prefetch else 0.0
      comm_start[l] = max(comm_end[l - 1] if l else 0.0, issue)
      comm_end[l] = comm_start[l] + c[l]
      fwd_start[l] = max(fwd_end[l - 1] if l else 0.0, comm_end[l])
      fwd_end[l] = fwd_start[l] + f[l]
  forward = float(fwd_end[-1])
  return {'comm_start': comm_start, 'comm_end': comm_end, 'fwd_start': fwd_start, 'fwd_end': fwd_end,
          'forward': forward, 'overhead': forward - float(f.sum())}


def run_a_edit(params: PyTree, *, num_workers: int, inner: optax.GradientTransformation,
               grad_fn: Callable[[PyTree, Any], tuple[jax.Array, PyTree]],
               batch_fn: Callable[[int, int], Any], step_time: Callable[[int, int], float],
               sync_time: float | None = None, total_time: float,
               outer: optax.GradientTransformation | None = None, min_total_steps: int = 1,
               use_step_weight: bool = False, step_weight_ratio: float = 0.5, clip: float | None = 10.0,
               temperature: float | None = 1.0, anomaly: bool = True, ewma_alpha: float = 0.02,
               warmup: int = 120, threshold: float = 3.0, backend: str = 'vmap',
               on_sync: Callable[[dict], Any] | None = None, eval_fn: Callable[[PyTree], float] | None = None,
               sync_cost: float = 0.0,
               steps_per_round: int | None = None) -> tuple[PyTree, list[dict]]:
  """A-EDiT in simulated time: asynchronous local steps, time-triggered syncs with the pseudo-gradient penalty.

  Each worker w repeatedly takes an inner step on ``batch_fn(w, k)`` (its k-th batch) lasting
  ``step_time(w, k)`` of simulated time. Every ``sync_time`` every worker stops after its current step; when
  all have arrived they sync: Delta_w = anchor - theta_w, the penalty of :func:`decentral.edit` (optionally weighting by
  step share, w = (1 - r) w_norm + r steps_w / sum steps), the outer step, and every worker restarts from the
  new anchor. A round with fewer than ``min_total_steps`` steps in total is skipped (atorch's
  ``min_total_global_steps``).

  Args:
    params: initial parameters (the same for every worker).
    num_workers: n.
    inner: the inner optimizer (its state is per worker and persists across syncs).
    grad_fn: ``(params, batch) -> (loss, grads)``, jitted here once for a single worker.
    batch_fn: ``(worker, step) -> batch`` on the host.
    step_time: ``(worker, step) -> duration`` (e.g. :func:`decentral.sim.step_time_model`).
    sync_time: the sync period in simulated time (atorch's ``local_sgd_sync_time``).
    total_time: simulated time to run for.
    outer: the outer optimizer; as in :func:`decentral.local_sgd.edit` when None.
    min_total_steps: skip a sync with fewer steps summed over workers since the last one.
    use_step_weight, step_weight_ratio: atorch's ``use_step_weight`` and ``step_weight_ratio``.
    clip, temperature, anomaly, ewma_alpha, warmup, threshold: the penalty (see :func:`decentral.edit`).
    backend: how the sync runs over the workers (:func:`decentral.axis.run`).
    on_sync: called with each sync's record.
    eval_fn: if given, ``eval_fn(global params)`` after each sync is stored in the record as ``'eval'`` (e.g. the
      full training loss, for time-to-target measurements).
    sync_cost: simulated time each sync adds before the workers resume (e.g. the ``overhead`` of
      :func:`layerwise_sync_schedule`; 0: free syncs).
    steps_per_round: instead of ``sync_time``, sync after this many steps of every worker: EDiT's synchronous
      rounds, each waiting for the slowest worker (give exactly one of the two).

  Returns:
    (the final global parameters, one record per sync: time, steps per worker, bytes per worker, rejected,
    mean loss of the workers' last steps).
  """
  cfg = check_config(PenaltyConfig(clip, temperature, anomaly, ewma_alpha, warmup, threshold, False))
  if (sync_time is None) == (steps_per_round is None):
    raise ValueError('run_a_edit: give exactly one of sync_time (A-EDiT) and steps_per_round (EDiT)')
  outer = outer or default_outer(momentum=EDIT_OUTER_MOMENTUM)
  n = int(num_workers)
  leaves = jax.tree.leaves(params)

  @jax.jit
  def local_step(p, s, batch):
    loss, grads = grad_fn(p, batch)
    u, s = inner.update(grads, s, p)
    return optax.apply_updates(p, u), s, loss

  sync_fn = _a_edit_sync_fn(outer, cfg, step_weight_ratio, use_step_weight, 'workers')
  run_sync = axis.run(sync_fn, n, backend=backend)
  worker_params = [params] * n
  worker_inner = [inner.init(params)] * n
  total_steps = np.zeros(n, np.int64)
  last_loss = [float('nan')] * n
  sync_state = AEDiTSync(params, tuple(outer.init(x) for x in leaves), ewma_init(len(leaves), cfg.warmup))
  stacked_sync = jax.tree.map(lambda x: jnp.stack([x] * n), sync_state)
  history: list[dict] = []
  per_worker_bytes = penalty_bytes(params, cfg)

  def on_step(w, k, t):
    worker_params[w], worker_inner[w], loss = local_step(worker_params[w], worker_inner[w], batch_fn(w, k))
    total_steps[w] += 1
    last_loss[w] = loss

  def on_round(t, since):
    nonlocal stacked_sync
    if sum(since) < min_total_steps:
      return False
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *worker_params)
    anchor, stacked_sync, rejected = run_sync(stacked, stacked_sync, jnp.asarray(total_steps, jnp.int32))
    for w in range(n):
      worker_params[w] = jax.tree.map(lambda x: x[w], anchor)
    record = {'time': float(t), 'sync_end': float(t) + float(sync_cost), 'steps': list(map(int, since)),
              'total_steps': int(total_steps.sum()),
              'bytes_per_worker': per_worker_bytes, 'rejected': int(np.asarray(rejected).sum()),
              'loss': float(np.mean([float(v) for v in last_loss]))}
    if eval_fn is not None:
      record['eval'] = float(eval_fn(worker_params[0]))
    history.append(record)
    if on_sync is not None:
      on_sync(record)
    return True

  if steps_per_round is None:
    events.run_time_triggered(n, step_time, period=sync_time, total_time=total_time, on_step=on_step,
                              on_round=on_round, round_cost=sync_cost)
  else:
    events.run_step_triggered(n, step_time, steps_per_round=steps_per_round, total_time=total_time,
                              on_step=on_step, on_round=on_round, round_cost=sync_cost)
  return worker_params[0], history
