r"""D-SGD with sparse or late gossip and one exact global average: "A Single Merging Suffices" (Zhu et al. 2025,
arXiv 2507.06542; ICLR 2026 as "On the Surprising Effectiveness of a Single Global Merging in Decentralized
Learning").

Workers run local SGD and gossip along a sparse graph only on scheduled steps; at the last step every worker
replaces its model by the exact average of all models (one all-reduce, the "single global merge"):

.. math::
   x_i \leftarrow \begin{cases}
     \tfrac1n \sum_j (x_j - \gamma g_j) & t = T \ (\text{the merge}) \\
     \sum_j W_{ij} (x_j - \gamma g_j) & t \in S \ (\text{gossip steps}) \\
     x_i - \gamma g_i & \text{otherwise}
   \end{cases}

with :math:`S = \{t \ge t_0 : (t - t_0) \bmod k = 0\}` (``gossip_every = k``, ``gossip_from = t_0``; k = 0: no
gossip before the merge). The paper's finding: with a fixed communication budget, late gossip keeps the local
models mergeable, and the merged model recovers server-based (parallel SGD / FedAvg) performance even though the
local models disagree. Convention: steps counted from 1; the authors' code ("truncate" schedules over a random
topology) spends its budget by a schedule of peers per step instead of a fixed graph.

>>> import jax.numpy as jnp
>>> from decentral import axis
>>> axis.run(lambda x: global_merge(x, 'workers'), 4)(jnp.arange(4.0))
Array([1.5, 1.5, 1.5, 1.5], dtype=float32)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from decentral import axis, checks
from decentral.p2p.sgd import need_params, sgd_then
from decentral.p2p.topology import Topology, gossip
from decentral.stacked import compute_dtype


class ScheduledGossipState(NamedTuple):
  count: jax.Array  # steps taken


def global_merge(tree: Any, axis_name: str) -> Any:
  """The exact average of every worker's tree (an all-reduce), computed in float32 or wider."""
  return jax.tree.map(lambda x: lax.pmean(x.astype(compute_dtype(x)), axis_name).astype(x.dtype), tree)


def scheduled_gossip(topology: Topology | None, *, axis_name: str, merge_at: int | None, gossip_every: int = 0,
                     gossip_from: int = 1) -> optax.GradientTransformation:
  """After the local step: gossip on the scheduled steps, the global merge at step ``merge_at`` (see the module).

  Args:
    topology: the sparse graph of the scheduled gossip (None only with ``gossip_every = 0``).
    axis_name: the worker axis.
    merge_at: the step T of the global merge (also on every multiple of T, for a run of several phases); None:
      never (then this is D-SGD with a gossip schedule).
    gossip_every: k >= 0, gossip every k steps from ``gossip_from`` on; 0 = never.
    gossip_from: t_0 >= 1, the first gossip step (late gossip: a large t_0).

  Returns:
    A ``GradientTransformation`` (needs ``params``).
  """
  every = checks.non_negative_int(gossip_every, 'scheduled_gossip: gossip_every')
  start = checks.positive_int(gossip_from, 'scheduled_gossip: gossip_from')
  if merge_at is not None:
    checks.positive_int(merge_at, 'scheduled_gossip: merge_at')
  if every and topology is None:
    raise ValueError('scheduled_gossip: gossip_every > 0 needs a topology')

  def init_fn(params):
    del params
    return axis.varying(ScheduledGossipState(jnp.zeros([], jnp.int32)), axis_name)

  def update_fn(updates, state, params=None):
    need_params(params, 'scheduled_gossip')
    t = state.count + 1
    half = jax.tree.map(lambda p, u: p + u.astype(p.dtype), params, updates)

    def keep(tree):
      return axis.varying(tree, axis_name)

    mixed = half
    if every:  # every worker has the same count: the branch is the same everywhere
      on = (t >= start) & ((t - start) % every == 0)
      mixed = lax.cond(on, lambda tree: keep(gossip(tree, topology, axis_name)), keep, mixed)
    if merge_at is not None:
      mixed = lax.cond(t % merge_at == 0, lambda tree: keep(global_merge(tree, axis_name)), keep, mixed)
    out = jax.tree.map(lambda m, p: (m - p).astype(p.dtype), mixed, params)
    return out, keep(ScheduledGossipState(t))

  return optax.GradientTransformation(init_fn, update_fn)


def single_merge_dsgd(learning_rate: optax.ScalarOrSchedule, topology: Topology | None, *, axis_name: str,
                      merge_at: int | None, gossip_every: int = 1, gossip_from: int = 1,
                      momentum: float | None = None) -> optax.GradientTransformation:
  r"""D-SGD with a gossip schedule and a single global merge at step ``merge_at`` (see the module).

  ``optax.chain(optax.sgd(learning_rate, momentum), scheduled_gossip(...))``; ``gossip_every = 1``,
  ``merge_at = None`` is D-SGD (:func:`decentral.dsgd`), ``gossip_every = 0`` is local SGD with one average at
  the end.

  Args:
    learning_rate: step size gamma (or schedule).
    topology: the sparse graph (None if ``gossip_every = 0``).
    axis_name: the worker axis.
    merge_at: the step of the global merge (the last step of training); None: never.
    gossip_every: gossip every k steps (0 = never before the merge).
    gossip_from: the first gossip step.
    momentum: optional local heavy-ball momentum (optax.sgd convention; the authors' runs use plain SGD).

  Returns:
    A ``GradientTransformation`` for one worker (needs ``params``).
  """
  return sgd_then('single_merge_dsgd', learning_rate, momentum,
                  lambda: scheduled_gossip(topology, axis_name=axis_name, merge_at=merge_at, gossip_every=gossip_every,
                                           gossip_from=gossip_from))
