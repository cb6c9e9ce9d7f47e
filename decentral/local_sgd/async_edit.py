"""A-EDiT: asynchronous EDiT in simulated time, on the host-side event simulator.

Workers of different speeds train without waiting; every ``sync_time`` of simulated time they synchronise
(skipping the round when fewer than ``min_total_steps`` steps were taken) with EDiT's pseudo-gradient penalty
(:mod:`decentral.local_sgd.penalty`); optional step weights mix each worker's share of the steps into the
weights. :func:`run_a_edit` drives jitted per-event steps from :func:`decentral.sim.run_time_triggered`.

Conventions from the authors' atorch code (``atorch/local_sgd``): the step weight of a worker is its total step
count over the sum of all workers' (atorch's ``global_step / all_reduce(global_step)``).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

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


def run_a_edit(params: PyTree, *, num_workers: int, inner: optax.GradientTransformation,
               grad_fn: Callable[[PyTree, Any], tuple[jax.Array, PyTree]],
               batch_fn: Callable[[int, int], Any], step_time: Callable[[int, int], float], sync_time: float,
               total_time: float, outer: optax.GradientTransformation | None = None, min_total_steps: int = 1,
               use_step_weight: bool = False, step_weight_ratio: float = 0.5, clip: float | None = 10.0,
               temperature: float | None = 1.0, anomaly: bool = True, ewma_alpha: float = 0.02,
               warmup: int = 120, threshold: float = 3.0, backend: str = 'vmap',
               on_sync: Callable[[dict], Any] | None = None) -> tuple[PyTree, list[dict]]:
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

  Returns:
    (the final global parameters, one record per sync: time, steps per worker, bytes per worker, rejected,
    mean loss of the workers' last steps).
  """
  cfg = check_config(PenaltyConfig(clip, temperature, anomaly, ewma_alpha, warmup, threshold, False))
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
    record = {'time': float(t), 'steps': list(map(int, since)), 'total_steps': int(total_steps.sum()),
              'bytes_per_worker': per_worker_bytes, 'rejected': int(np.asarray(rejected).sum()),
              'loss': float(np.mean([float(v) for v in last_loss]))}
    history.append(record)
    if on_sync is not None:
      on_sync(record)
    return True

  events.run_time_triggered(n, step_time, period=sync_time, total_time=total_time, on_step=on_step,
                               on_round=on_round)
  return worker_params[0], history
