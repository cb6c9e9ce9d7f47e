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

With p = 0 this is the rule :func:`decentral.sybilwall` run by every node on its neighbourhood. The state holds n
histories per node (n^2 d floats): a simulator of the network, host-side and jit-able, not a worker-axis transform.

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

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from decentral import checks
from decentral.robust.similarity import foolsgold_weights


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
  coins = jax.random.uniform(jax.random.fold_in(state.key, state.count), (n, n, n)) < forward_prob  # [i, k, j]
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
