"""SybilWall's network part: probabilistic gossip of non-neighbours' updates, so each node can judge Sybil
similarity over the whole network and not only among its neighbours.

SybilWall (Werthenbach and Pouwelse, arXiv 2306.15044) combines a similarity-based, FoolsGold-style aggregation
(:func:`decentral.sybilwall`, :func:`decentral.robust.similarity.foolsgold_weights`) with a probabilistic gossip
mechanism that spreads models beyond the immediate neighbourhood at a bounded per-node cost. Why it matters: a
Sybil region attached to an honest node by one attack edge shows that node a single Sybil, which has no similar
partner among its neighbours and passes FoolsGold; once the other Sybils' updates reach it by gossip, their mutual
similarity gives them away.

The forwarding rule here is ours (the paper's exact probability schedule and hop budget were not available to us):
every round each node i gets the fresh update of each neighbour; besides, each neighbour k forwards to i, with
probability p independently per (i, k, j), the latest update of node j that k holds (one hop further per round, so
information spreads over the graph with a staleness of one round per hop; when several neighbours forward the same
j, the lowest-indexed one's copy is taken). Node i adds everything it receives to its history :math:`H_{ij}`
(a running sum, as FoolsGold's), computes FoolsGold weights :math:`\\alpha_{ij}` from the cosine similarities of
the histories of every node it knows, and mixes only its neighbours' current models with them (its own with weight
1):

.. math:: x_i \\leftarrow \\frac{x_i + \\sum_{j \\in N_i} \\alpha_{ij}\\, x_j}{1 + \\sum_{j \\in N_i} \\alpha_{ij}}

With p = 0 this is the rule :func:`decentral.sybilwall` run by every node on its neighbourhood. The coins of node
i in round t are ``forwarding_coins(key, t, i, n)``, so the two implementations below draw the same ones:

- the network simulator (:func:`sybil_gossip_init`, :func:`sybil_gossip_step`, :func:`sybilwall_mix`): every
  node's state in one array, n histories per node (n^2 d floats), host-driven and jit-able;
- the worker axis (:func:`sybilwall_gossip`, :func:`sybilwall_dsgd`): each worker holds its own n histories and
  latest copies (shaped like its parameters, with a leading n), gathers its neighbours' tables and models each
  round (``all_gather``: n^2 d floats received per worker and round, the price of simulating forwarding exactly)
  and mixes.

>>> import jax.numpy as jnp, numpy as np
>>> adj = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], bool)  # a path 0 - 1 - 2
>>> state = sybil_gossip_init(3, 2)
>>> state = sybil_gossip_step(state, jnp.array([[1., 0.], [0., 1.], [1., 1.]]), adj, forward_prob=1.0)
>>> state.known.astype(int).tolist()  # after one round: neighbours only (nothing to forward yet)
[[1, 1, 0], [1, 1, 1], [0, 1, 1]]
>>> state = sybil_gossip_step(state, jnp.array([[1., 0.], [0., 1.], [1., 1.]]), adj, forward_prob=1.0)
>>> state.known.astype(int).tolist()  # node 1 forwarded 2's update to 0 and 0's to 2
[[1, 1, 1], [1, 1, 1], [1, 1, 1]]
"""

from __future__ import annotations


from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from decentral import axis, checks
from decentral.p2p.sgd import need_params, sgd_then
from decentral.p2p.topology import Topology
from decentral.robust.similarity import foolsgold_weights
from decentral.stacked import compute_dtype

PyTree = Any


def forwarding_coins(key: jax.Array, count: jax.Array | int, node: jax.Array | int, n: int) -> jax.Array:
  """Node ``node``'s uniforms (n, n) of round ``count``: entry [k, j] < p means neighbour k forwards j's update."""
  return jax.random.uniform(jax.random.fold_in(jax.random.fold_in(key, count), node), (n, n))


class SybilGossipState(NamedTuple):
  """Per node i: the histories H[i, j] and latest known updates last[i, j] of every node j, the mask of the nodes
  it has heard of, the round and the key."""

  history: jax.Array  # (n, n, d)
  last: jax.Array     # (n, n, d)
  known: jax.Array    # (n, n) bool
  count: jax.Array
  key: jax.Array


def sybil_gossip_init(n: int, d: int, *, seed: int = 0, dtype=jnp.float32) -> SybilGossipState:
  """Nobody knows anybody yet (a node learns its own update in the first round)."""
  checks.positive_int(n, 'sybil_gossip_init: n')
  checks.positive_int(d, 'sybil_gossip_init: d')
  zeros = jnp.zeros((n, n, d), dtype)
  return SybilGossipState(zeros, zeros, jnp.zeros((n, n), bool), jnp.zeros([], jnp.int32), jax.random.key(seed))


def sybil_gossip_step(state: SybilGossipState, updates: jax.Array, adjacency: np.ndarray, *,
                      forward_prob: float) -> SybilGossipState:
  """One round of gossip: fresh updates from neighbours (and one's own), forwarded ones with probability p.

  Args:
    state: the gossip state.
    updates: (n, d) this round's update (or model) of every node, as sent (Sybils send theirs).
    adjacency: (n, n) symmetric boolean graph.
    forward_prob: p in [0, 1].

  Returns:
    The new state (histories summed, latest copies replaced, ``known`` grown).
  """
  checks.unit_interval(forward_prob, 'sybil_gossip_step: forward_prob')
  n = state.known.shape[0]
  adj = jnp.asarray(np.asarray(adjacency, bool) & ~np.eye(n, dtype=bool))
  return _sybil_gossip_step(state, jnp.asarray(updates), adj, jnp.asarray(forward_prob, jnp.float32))


@jax.jit
def _sybil_gossip_step(state, updates, adj, forward_prob):
  n = adj.shape[0]
  direct = adj | jnp.eye(n, dtype=bool)
  coins = jax.vmap(lambda i: forwarding_coins(state.key, state.count, i, n))(jnp.arange(n)) < forward_prob  # [i,k,j]
  relay = adj[:, :, None] & state.known[None, :, :] & coins & ~direct[:, None, :]
  got = jnp.any(relay, axis=1)
  first = jnp.argmax(relay, axis=1)                       # (i, j): the lowest-indexed forwarding neighbour k
  forwarded = state.last[first, jnp.arange(n)[None, :]]   # last[k, j] for each (i, j)
  value = jnp.where(direct[:, :, None], updates[None, :, :].astype(state.last.dtype), forwarded)
  received = direct | got
  history = state.history + jnp.where(received[:, :, None], value, 0)
  last = jnp.where(received[:, :, None], value, state.last)
  return SybilGossipState(history, last, state.known | received, state.count + 1, state.key)


def sybil_weights(state: SybilGossipState, adjacency: np.ndarray) -> jax.Array:
  """(n, n) row-stochastic mixing: node i weighs each neighbour j by FoolsGold's alpha_ij from the histories of
  every node i knows, itself by 1, everybody else by 0."""
  n = state.known.shape[0]
  return _weights(state.history, state.known, jnp.asarray(np.asarray(adjacency, bool) & ~np.eye(n, dtype=bool)))


@jax.jit
def _weights(history, known, adj):
  alpha = jax.vmap(foolsgold_weights)(history, known)  # (n, n)
  w = jnp.where(adj & known, alpha, 0.0) + jnp.eye(adj.shape[0], dtype=alpha.dtype)
  return w / jnp.sum(w, axis=1, keepdims=True)


def sybilwall_mix(state: SybilGossipState, models: jax.Array, adjacency: np.ndarray) -> jax.Array:
  """Every node's new model: its neighbours' ``models`` (n, d) mixed with :func:`sybil_weights`."""
  return sybil_weights(state, adjacency) @ models


# ---------------------------------------------------------------------------------------------- on the worker axis


class SybilWallState(NamedTuple):
  """This worker's row of :class:`SybilGossipState`: per node j, the history H_j and latest copy of j's update
  (leaves shaped like the parameters with a leading n, in float32 or wider), whether j is known, the round, the
  key (shared)."""

  history: PyTree
  last: PyTree
  known: jax.Array  # (n,) bool
  count: jax.Array
  key: jax.Array


def _adjacency(topology):
  adj = np.asarray(topology.mixing) > 0
  np.fill_diagonal(adj, False)
  return adj


def sybilwall_gossip(topology: Topology, *, axis_name: str, forward_prob: float, seed: int = 0
                     ) -> optax.GradientTransformation:
  r"""SybilWall's gossip and mixing after the local step, on the worker axis: the round of
  :func:`sybil_gossip_step` (the local update :math:`u_i` is what a node sends and records), then
  :math:`x_i \leftarrow (x_i + u_i + \sum_{j \in N_i} \alpha_{ij} (x_j + u_j)) / (1 + \sum_{j \in N_i}
  \alpha_{ij})` (:func:`sybilwall_mix` of the half-step models).

  The graph is the topology's: j is a neighbour of i when :math:`W_{ij} > 0`, j != i (its weights are not used).
  Sybils are simulated by what they train on and send (their updates), not by an attack here.

  Args:
    topology: the graph (its size must match the axis).
    axis_name: the worker axis.
    forward_prob: p in [0, 1], the probability that a neighbour forwards a given node's latest update.
    seed: seeds the key shared by all workers (each draws its own coins from it, :func:`forwarding_coins`).

  Returns:
    A ``GradientTransformation`` (needs ``params``) whose state holds n histories and n latest copies.
  """
  checks.unit_interval(forward_prob, 'sybilwall_gossip: forward_prob')
  adj = _adjacency(topology)
  n = topology.n

  def init_fn(params):
    zeros = jax.tree.map(lambda p: jnp.zeros((n,) + jnp.shape(p), compute_dtype(p)), params)
    return axis.varying(SybilWallState(zeros, zeros, jnp.zeros((n,), bool), jnp.zeros([], jnp.int32),
                                       jax.random.key(seed)), axis_name)

  def update_fn(updates, state, params=None):
    need_params(params, 'sybilwall_gossip')
    if axis.axis_size(axis_name) != n:
      raise ValueError(f'topology has n={n} workers but axis {axis_name!r} has {axis.axis_size(axis_name)}')
    me = axis.worker_index(axis_name)
    mine = jnp.asarray(adj)[me]                                    # (n,) my neighbours
    direct = mine | (jnp.arange(n) == me)
    sent = jax.tree.map(lambda u, h: u.astype(h.dtype), updates, state.last)
    fresh, tables, known = axis.all_gather((sent, state.last, state.known), axis_name)  # (n, ...), (n, n, ...), (n, n)
    coins = forwarding_coins(state.key, state.count, me, n) < forward_prob               # [k, j]
    relay = mine[:, None] & known & coins & ~direct[None, :]
    got = jnp.any(relay, axis=0)
    first = jnp.argmax(relay, axis=0)                              # the lowest-indexed neighbour forwarding j
    received = direct | got

    # What i holds of j this round: j's fresh update from j itself, else the copy the first forwarder k holds.
    value = jax.tree.map(lambda f, t: jnp.where(_column(direct, f), f, t[first, jnp.arange(n)]), fresh, tables)
    history = jax.tree.map(lambda h, v: h + jnp.where(_column(received, v), v, 0), state.history, value)
    last = jax.tree.map(lambda old, v: jnp.where(_column(received, v), v, old), state.last, value)
    known = state.known | received
    alpha = foolsgold_weights(history, known)
    w = jnp.where(mine & known, alpha, 0.0) + (jnp.arange(n) == me)
    w = w / jnp.sum(w)
    half = jax.tree.map(lambda p, u: p.astype(compute_dtype(p)) + u.astype(compute_dtype(p)), params, updates)
    models = axis.all_gather(half, axis_name)
    out = jax.tree.map(lambda m, p: (jnp.tensordot(w.astype(m.dtype), m, 1) - p).astype(p.dtype), models, params)
    return out, axis.varying(SybilWallState(history, last, known, state.count + 1, state.key), axis_name)

  return optax.GradientTransformation(init_fn, update_fn)


def _column(mask, like):
  """``mask`` (n,) broadcast against ``like`` (n, ...)."""
  return mask.reshape(mask.shape + (1,) * (like.ndim - 1))


def sybilwall_dsgd(learning_rate: optax.ScalarOrSchedule, topology: Topology, *, axis_name: str, forward_prob: float,
                   seed: int = 0, momentum: float | None = None) -> optax.GradientTransformation:
  """SybilWall (Werthenbach and Pouwelse, arXiv 2306.15044) on the worker axis: a local SGD step, then
  :func:`sybilwall_gossip` (probabilistic gossip of non-neighbours' updates, FoolsGold weights from every known
  node's history, mixing of the neighbours' models). ``optax.chain(optax.sgd(learning_rate, momentum),
  sybilwall_gossip(...))``; the forwarding rule is ours (module docstring).

  Args:
    learning_rate: the local step size (or schedule).
    topology: the graph.
    axis_name: the worker axis.
    forward_prob, seed: see :func:`sybilwall_gossip`.
    momentum: optional local heavy-ball momentum (optax.sgd convention).

  Returns:
    A ``GradientTransformation`` for one worker (needs ``params``).
  """
  return sgd_then('sybilwall_dsgd', learning_rate, momentum,
                  lambda: sybilwall_gossip(topology, axis_name=axis_name, forward_prob=forward_prob, seed=seed))
