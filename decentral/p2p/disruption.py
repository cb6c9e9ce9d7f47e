r"""Disrupted peer-to-peer learning (Palmieri, Boldrini, Valerio, Passarella & Conti 2023, arXiv 2310.02986):
nodes or links lost abruptly at a chosen round, and how the survivors mix afterwards.

Decentralized SGD runs on a graph (the paper's is Barabasi-Albert) until round :math:`t_f`; from then on a set of
nodes is gone (they stop training and stop being heard) or a set of links is cut. The survivors keep gossiping
over what is left, each renormalising its row of the mixing matrix over the neighbours it still hears:

.. math::
   W'_{ij} = \frac{W_{ij}\,[j \text{ alive},\ (i,j) \text{ kept}]}{\sum_k W_{ik}\,[k \text{ alive},\ (i,k)
   \text{ kept}]} \ (i \text{ alive}), \qquad W'_{ii} = 1 \ (i \text{ failed}),

(:func:`decentral.renormalised` for node loss), so a survivor whose neighbours are all gone trains alone. Rows sum
to one but W' is no longer doubly stochastic: the average of the survivors drifts, as it does on real devices that
only know who they still hear. ``reweight='metropolis_hastings'`` instead recomputes Metropolis-Hastings weights on
the surviving graph (doubly stochastic again, as a node that re-runs its weight protocol would).

Conventions: a failed node's model is frozen at its last value (it is not evaluated); local training then
averaging with the neighbours is D-SGD's adapt-then-combine step, with the topology's weights (Metropolis-Hastings
by default). The paper's own averaging rule may weight neighbours differently (by data size, for instance); pass
a :class:`decentral.Topology` with those weights.

>>> import numpy as np
>>> from decentral.p2p import topology
>>> w = after_failure(topology.ring(4).mixing, failed_nodes=[1])
>>> np.round(np.asarray(w)[0], 3)  # worker 0 hears itself and 3 only
array([0.5, 0. , 0. , 0.5], dtype=float32)
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from decentral import axis, checks
from decentral.p2p.sgd import need_params, sgd_then
from decentral.p2p.topology import Topology, metropolis_hastings, renormalised

REWEIGHTS = ('renormalise', 'metropolis_hastings')


class DisruptionState(NamedTuple):
  count: jax.Array  # rounds taken


def _edges(links, n):
  out = []
  for link in links:
    i, j = (int(v) for v in link)
    if not (0 <= i < n and 0 <= j < n) or i == j:
      raise ValueError(f'failed_links: {link!r} is not a link between two of the {n} nodes')
    out.append((i, j))
  return out


def after_failure(mixing: np.ndarray, *, failed_nodes: Sequence[int] = (), failed_links: Sequence[tuple[int, int]]
                  = (), reweight: str = 'renormalise') -> jax.Array:
  """The mixing matrix after losing ``failed_nodes`` and the undirected ``failed_links`` (see the module).

  Args:
    mixing: the n x n mixing matrix before the failure.
    failed_nodes: indices of the nodes lost.
    failed_links: pairs (i, j) of links cut (both directions).
    reweight: 'renormalise' (each survivor rescales its row) or 'metropolis_hastings' (MH weights recomputed on
      the surviving graph).

  Returns:
    The n x n matrix as a JAX array (a failed node's row is e_i).
  """
  if reweight not in REWEIGHTS:
    raise ValueError(f'after_failure: reweight must be one of {REWEIGHTS}, got {reweight!r}')
  w = np.asarray(mixing, np.float64)
  n = w.shape[0]
  alive = np.ones(n, bool)
  for i in failed_nodes:
    if not 0 <= int(i) < n:
      raise ValueError(f'after_failure: failed node {i!r} is not one of the {n} nodes')
    alive[int(i)] = False
  kept = w.copy()
  for i, j in _edges(failed_links, n):
    kept[i, j] = kept[j, i] = 0.0
  if reweight == 'metropolis_hastings':
    adj = (kept > 0) & alive[:, None] & alive[None, :]
    np.fill_diagonal(adj, False)
    return jnp.asarray(metropolis_hastings(adj))
  return renormalised(kept, alive)


def disrupted_gossip(topology: Topology, *, axis_name: str, fail_round: int, failed_nodes: Sequence[int] = (),
                     failed_links: Sequence[tuple[int, int]] = (), reweight: str = 'renormalise'
                     ) -> optax.GradientTransformation:
  r"""Gossip after the local step, over the intact graph before round ``fail_round`` and the disrupted one from
  it on: x_i moves to :math:`\sum_j W_{ij}(x_j + u_j)`, W switching to :func:`after_failure`'s W'. From the failure
  on a failed node's update is zero (its model stays as it was).

  Args:
    topology: the intact graph.
    axis_name: the worker axis.
    fail_round: t_f >= 1, the first round (1-based, one round per ``update``) without the lost nodes or links.
    failed_nodes, failed_links, reweight: see :func:`after_failure`.

  Returns:
    A ``GradientTransformation`` (needs ``params``); its state counts the rounds.
  """
  checks.positive_int(fail_round, 'disrupted_gossip: fail_round')
  before = np.asarray(topology.mixing)
  after = after_failure(before, failed_nodes=failed_nodes, failed_links=failed_links, reweight=reweight)
  alive = np.ones(topology.n, bool)
  alive[list(failed_nodes)] = False

  def init_fn(params):
    del params
    return axis.varying(DisruptionState(jnp.zeros([], jnp.int32)), axis_name)

  def update_fn(updates, state, params=None):
    need_params(params, 'disrupted_gossip')
    n = axis.axis_size(axis_name)
    if n != topology.n:
      raise ValueError(f'topology has n={topology.n} workers but axis {axis_name!r} has {n}')
    t = state.count + 1
    i = axis.worker_index(axis_name)
    broken = t >= fail_round
    row = jnp.where(broken, jnp.asarray(after)[i], jnp.asarray(before)[i])
    up = jnp.asarray(alive)[i] | ~broken  # a failed node stops training

    def mix(p, u):
      half = p + jnp.where(up, u.astype(p.dtype), jnp.zeros_like(p))
      everyone = axis.all_gather(half, axis_name)
      return (jnp.tensordot(row.astype(half.dtype), everyone, 1) - p).astype(p.dtype)

    return jax.tree.map(mix, params, updates), axis.varying(DisruptionState(t), axis_name)

  return optax.GradientTransformation(init_fn, update_fn)


def disrupted_dsgd(learning_rate: optax.ScalarOrSchedule, topology: Topology, *, axis_name: str, fail_round: int,
                   failed_nodes: Sequence[int] = (), failed_links: Sequence[tuple[int, int]] = (),
                   reweight: str = 'renormalise', momentum: float | None = None) -> optax.GradientTransformation:
  """D-SGD whose graph loses ``failed_nodes`` and ``failed_links`` at round ``fail_round`` (see the module).

  ``optax.chain(optax.sgd(learning_rate, momentum), disrupted_gossip(...))``; with nothing lost it is
  :func:`decentral.dsgd`.

  Args:
    learning_rate: step size (or schedule).
    topology: the intact graph (e.g. :func:`decentral.barabasi_albert`).
    axis_name: the worker axis.
    fail_round, failed_nodes, failed_links, reweight: see :func:`disrupted_gossip`.
    momentum: optional local heavy-ball momentum (optax.sgd convention).

  Returns:
    A ``GradientTransformation`` for one worker (needs ``params``).
  """
  return sgd_then('disrupted_dsgd', learning_rate, momentum,
                  lambda: disrupted_gossip(topology, axis_name=axis_name, fail_round=fail_round,
                                           failed_nodes=failed_nodes, failed_links=failed_links, reweight=reweight))
