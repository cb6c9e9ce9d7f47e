"""Communication graphs as mixing matrices, and gossip along them on the worker axis.

A :class:`Topology` is data: a doubly-stochastic n x n mixing matrix W (row i holds the weights worker i gives
to the models it receives) and, when W is circulant, its nonzero diagonals as ``shifts`` so :func:`gossip`
can use ``ppermute`` (one message per neighbour) instead of gathering every model. One gossip step computes
x_i <- sum_j W_ij x_j on every worker i.

>>> import numpy as np
>>> t = ring(4)
>>> np.round(t.mixing, 3)
array([[0.333, 0.333, 0.   , 0.333],
       [0.333, 0.333, 0.333, 0.   ],
       [0.   , 0.333, 0.333, 0.333],
       [0.333, 0.   , 0.333, 0.333]])
>>> round(spectral_gap(t.mixing), 4)
0.6667

Graphs: :func:`complete`, :func:`ring`, :func:`torus`, :func:`exponential` (all regular, gossip by ``ppermute``),
:func:`erdos_renyi`, :func:`barabasi_albert`, :func:`star` and :func:`from_adjacency` (gossip by ``all_gather``
and the worker's row), with Metropolis-Hastings (:func:`metropolis_hastings`) or uniform max-degree
(:func:`uniform_weights`) mixing weights. Node failures: :func:`gossip` takes the alive mask, a failed worker
keeps its model and the others renormalise their rows over the alive workers (:func:`renormalised`).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from decentral import axis, checks


class Topology(NamedTuple):
  """A mixing matrix and, if it is circulant, its diagonals: ``shifts = ((s, w), ...)`` with W[i, i+s] = w.

  ``perms = ((src, w), ...)`` describes any other mixing matrix that is a weighted sum of permutations
  (W[i, src[i]] = w summed over the terms; e.g. the torus, a Cayley graph of Z_r x Z_c): gossip then uses one
  ``ppermute`` per term as for circulant graphs.
  """

  mixing: np.ndarray
  shifts: tuple[tuple[int, float], ...] | None = None
  perms: tuple[tuple[tuple[int, ...], float], ...] | None = None

  @property
  def n(self) -> int:
    return self.mixing.shape[0]


def circulant(n: int, shifts: dict[int, float]) -> Topology:
  """The circulant topology with W[i, (i + s) mod n] = w for each (s, w); weights must sum to one."""
  checks.positive_int(n, 'n')
  if not np.isclose(sum(shifts.values()), 1.0):
    raise ValueError(f'circulant weights must sum to 1, got {sum(shifts.values())}')
  w = np.zeros((n, n))
  for s, weight in shifts.items():
    w[np.arange(n), (np.arange(n) + s) % n] += weight
  merged: dict[int, float] = {}
  for s, weight in shifts.items():  # shifts equal mod n (e.g. +1 and -1 when n = 2) are one message
    merged[s % n] = merged.get(s % n, 0.0) + weight
  return Topology(w, tuple(sorted(merged.items())))


def complete(n: int) -> Topology:
  """Every worker averages all models: W = 11^T / n (spectral gap 1)."""
  return circulant(n, {s: 1.0 / n for s in range(n)})


def ring(n: int) -> Topology:
  """The ring with uniform weights 1/3 on self and both neighbours (Metropolis-Hastings weights for degree 2)."""
  checks.positive_int(n, 'n')
  if n == 1:
    return circulant(1, {0: 1.0})
  if n == 2:
    return circulant(2, {0: 0.5, 1: 0.5})
  return circulant(n, {-1: 1 / 3, 0: 1 / 3, 1: 1 / 3})


def spectral_gap(mixing: np.ndarray) -> float:
  """``1 - |lambda_2|`` of a symmetric mixing matrix, lambda_2 the second-largest eigenvalue in modulus."""
  eig = np.sort(np.abs(np.linalg.eigvalsh(np.asarray(mixing, dtype=np.float64))))[::-1]
  return float(1.0 - eig[1]) if len(eig) > 1 else 1.0


def gossip(tree: Any, topology: Topology, axis_name: str, alive: jax.Array | np.ndarray | None = None) -> Any:
  """One gossip step for this worker: sum_j W_ij x_j, by ``ppermute`` when circulant, else gather + row.

  Args:
    tree: this worker's pytree.
    topology: the graph and its mixing matrix.
    axis_name: the worker axis (its size must be ``topology.n``).
    alive: optional (n,) boolean mask, the same on every worker: a failed worker keeps its own tree, and every
      alive worker renormalises its row over the alive workers, x_i <- sum_{j alive} W_ij x_j / sum_{j alive}
      W_ij (:func:`renormalised`). Rows then no longer sum columns to one: the average drifts while nodes are down.

  Returns:
    The mixed tree.
  """
  n = axis.axis_size(axis_name)
  if n != topology.n:
    raise ValueError(f'topology has n={topology.n} workers but axis {axis_name!r} has {n}')
  if alive is not None and np.shape(alive) != (n,):
    raise ValueError(f'alive must be a boolean mask of shape ({n},), got shape {np.shape(alive)}')
  if topology.shifts is not None or topology.perms is not None:
    terms = topology.perms if topology.perms is not None else tuple(
        (tuple((i + s) % n for i in range(n)), w) for s, w in topology.shifts)
    return _gossip_permutations(tree, terms, axis_name, n, alive)
  i = axis.worker_index(axis_name)
  if alive is None:
    row = jnp.asarray(topology.mixing)[i]
  else:
    row = jnp.asarray(renormalised(topology.mixing, alive))[i]
  return jax.tree.map(lambda x: jnp.tensordot(row.astype(x.dtype), lax.all_gather(x, axis_name), 1), tree)


def renormalised(mixing: np.ndarray | jax.Array, alive: np.ndarray | jax.Array) -> jax.Array:
  """The mixing matrix after node failures: failed rows become e_i, alive rows drop failed columns and rescale.

  W'_ij = W_ij [j alive] / sum_{k alive} W_ik for alive i; W'_ii = 1 for failed i. Works on NumPy or traced masks.
  """
  w = jnp.asarray(mixing)
  alive = jnp.asarray(alive, bool)
  kept = w * alive[None, :]
  kept = kept / jnp.sum(kept, axis=1, keepdims=True)
  return jnp.where(alive[:, None], kept, jnp.eye(w.shape[0], dtype=w.dtype))


def _gossip_permutations(tree, terms, axis_name, n, alive):
  i = axis.worker_index(axis_name)
  if alive is not None:
    alive = jnp.asarray(alive, bool)
    srcs = jnp.asarray([src for src, _ in terms])  # (terms, n)
    weights = jnp.asarray([w for _, w in terms]) * alive[srcs[:, i]]
    weights = weights / jnp.sum(weights)
  else:
    weights = [w for _, w in terms]

  def mix(x):
    out = jnp.zeros_like(x)
    for k, (src, _) in enumerate(terms):
      identity = all(src[j] == j for j in range(n))
      # Worker j needs x_{src[j]}: worker src[j] sends to j.
      received = x if identity else lax.ppermute(x, axis_name, [(src[j], j) for j in range(n)])
      out = out + jnp.asarray(weights[k], x.dtype) * received
    if alive is not None:
      out = jnp.where(alive[i], out, x)
    return out

  return jax.tree.map(mix, tree)


def neighbours(tree: Any, topology: Topology | None, axis_name: str) -> tuple[Any, jax.Array, jax.Array]:
  """What this worker receives in one gossip step, before mixing: the stacked trees it hears, their senders, and
  the weights its row of W gives them.

  On a circulant or torus topology, one ``ppermute`` per term (m = the number of terms, the worker itself among
  them as the zero shift); on any other graph, and on the complete graph given as ``topology=None`` (weights
  1/n), an ``all_gather`` of every worker's tree (m = n, zero weight for the workers it does not hear).
  ``sum_k weights[k] * stacked[k]`` is :func:`gossip`.

  Args:
    tree: this worker's pytree.
    topology: the graph (its size must match the axis), or None for the complete graph.
    axis_name: the worker axis.

  Returns:
    ``(stacked, senders, weights)``: the m received trees stacked on a leading axis, the (m,) int32 index of each
    one's sender, and its (m,) weight (float32, or float64 when x64 is on).
  """
  n = axis.axis_size(axis_name)
  i = axis.worker_index(axis_name)
  if topology is None:
    return axis.all_gather(tree, axis_name), jnp.arange(n, dtype=jnp.int32), jnp.full((n,), 1.0 / n)
  if n != topology.n:
    raise ValueError(f'topology has n={topology.n} workers but axis {axis_name!r} has {n}')
  if topology.shifts is None and topology.perms is None:
    row = jnp.asarray(topology.mixing)[i]
    return axis.all_gather(tree, axis_name), jnp.arange(n, dtype=jnp.int32), row
  terms = topology.perms if topology.perms is not None else tuple(
      (tuple((j + s) % n for j in range(n)), w) for s, w in topology.shifts)

  def receive(x):
    # Worker j needs x_{src[j]}: worker src[j] sends to j.
    return jnp.stack([x if all(src[j] == j for j in range(n)) else
                      lax.ppermute(x, axis_name, [(src[j], j) for j in range(n)]) for src, _ in terms])

  senders = jnp.asarray([src for src, _ in terms], jnp.int32)[:, i]
  return jax.tree.map(receive, tree), senders, jnp.asarray([w for _, w in terms])


# Graphs beyond the ring and the complete graph.


def _regular_from_offsets(n, offsets):
  """Distinct nonzero offsets mod n, uniform weight 1/(deg + 1) with self: MH weights of a regular graph."""
  distinct = sorted({o % n for o in offsets} - {0})
  w = 1.0 / (len(distinct) + 1)
  return {0: w, **{o: w for o in distinct}}


def exponential(n: int) -> Topology:
  """The (symmetrised) static exponential graph: i ~ i +- 2^k mod n for 2^k < n, uniform weights 1/(deg + 1).

  Ying et al. 2021 (arXiv 2110.13363) use the directed version (i -> i + 2^k); we keep both directions so W is
  symmetric (Metropolis-Hastings weights of a regular graph) and its spectral gap is ``1 - |lambda_2|``.
  """
  checks.positive_int(n, 'n')
  offsets = [s * 2 ** k for k in range(max(1, int(np.ceil(np.log2(max(n, 2)))))) if 2 ** k < n for s in (1, -1)]
  return circulant(n, _regular_from_offsets(n, offsets))


def torus(rows: int, cols: int) -> Topology:
  """The 2-D torus on rows x cols workers (i = a * cols + b), 4 neighbours, uniform weights 1/(deg + 1).

  A Cayley graph of Z_rows x Z_cols: each neighbour direction is a permutation, so gossip uses ``ppermute``.
  Directions that coincide (a side of length 1 or 2) are merged, as in :func:`circulant`.
  """
  checks.positive_int(rows, 'rows')
  checks.positive_int(cols, 'cols')
  n = rows * cols
  moves = {(0, 0)}
  for da, db in ((1, 0), (-1, 0), (0, 1), (0, -1)):
    moves.add((da % rows, db % cols))
  w = 1.0 / len(moves)
  terms = []
  mixing = np.zeros((n, n))
  for da, db in sorted(moves):
    src = tuple(((i // cols + da) % rows) * cols + (i % cols + db) % cols for i in range(n))
    terms.append((src, w))
    mixing[np.arange(n), src] += w
  return Topology(mixing, None, tuple(terms))


def metropolis_hastings(adjacency: np.ndarray) -> np.ndarray:
  """Metropolis-Hastings weights W_ij = 1/(max(deg_i, deg_j) + 1) on edges, the rest on the diagonal.

  Symmetric and doubly stochastic for any undirected graph (decentralizepy's default).
  """
  adj = _check_adjacency(adjacency)
  deg = adj.sum(1)
  w = np.where(adj, 1.0 / (np.maximum(deg[:, None], deg[None, :]) + 1.0), 0.0)
  return w + np.diag(1.0 - w.sum(1))


def uniform_weights(adjacency: np.ndarray) -> np.ndarray:
  """Uniform (max-degree) weights W_ij = 1/(d_max + 1) on every edge, the rest on the diagonal.

  The same weight on every edge while staying symmetric and doubly stochastic; equal to Metropolis-Hastings on a
  regular graph. (1/(deg_i + 1) per row would not be doubly stochastic on an irregular graph.)
  """
  adj = _check_adjacency(adjacency)
  w = np.where(adj, 1.0 / (adj.sum(1).max() + 1.0), 0.0)
  return w + np.diag(1.0 - w.sum(1))


WEIGHTS = {'metropolis_hastings': metropolis_hastings, 'uniform': uniform_weights}


def from_adjacency(adjacency: np.ndarray, weights: str = 'metropolis_hastings') -> Topology:
  """The topology of an undirected graph with the named mixing weights; gossip by gather + row."""
  if weights not in WEIGHTS:
    raise ValueError(f'weights must be one of {sorted(WEIGHTS)}, got {weights!r}')
  return Topology(WEIGHTS[weights](adjacency))


def erdos_renyi(n: int, p: float, seed: int = 0, weights: str = 'metropolis_hastings') -> Topology:
  """G(n, p): each edge independently with probability p, redrawn (seed, seed + 1, ...) until connected.

  Raises if no connected draw comes within 100 tries (p too small for n).
  """
  checks.positive_int(n, 'n')
  if not 0 < p <= 1:
    raise ValueError(f'p must be in (0, 1], got {p!r}')
  for attempt in range(100):
    rng = np.random.default_rng([seed, attempt])
    upper = np.triu(rng.random((n, n)) < p, 1)
    adj = upper | upper.T
    if _connected(adj):
      return from_adjacency(adj, weights)
  raise ValueError(f'erdos_renyi: no connected G(n={n}, p={p}) in 100 draws; increase p')


def barabasi_albert(n: int, m: int, seed: int = 0, weights: str = 'metropolis_hastings') -> Topology:
  """Barabasi-Albert preferential attachment: each new node links to m distinct existing nodes, chosen with
  probability proportional to degree (the networkx construction: m initial isolated nodes, the first newcomer
  links to all of them)."""
  checks.positive_int(n, 'n')
  if not checks.is_int(m) or not 1 <= m < n:
    raise ValueError(f'barabasi_albert: m must be an integer in [1, n={n}), got {m!r}')
  rng = np.random.default_rng(seed)
  adj = np.zeros((n, n), bool)
  targets, repeated = list(range(m)), []
  for new in range(m, n):
    adj[new, targets] = adj[targets, new] = True
    repeated += targets + [new] * m
    chosen: set[int] = set()
    while len(chosen) < m:
      chosen.add(int(repeated[rng.integers(len(repeated))]))
    targets = sorted(chosen)
  return from_adjacency(adj, weights)


def star(n: int, weights: str = 'metropolis_hastings') -> Topology:
  """The star: worker 0 linked to every other worker."""
  checks.positive_int(n, 'n')
  adj = np.zeros((n, n), bool)
  adj[0, 1:] = adj[1:, 0] = True
  return from_adjacency(adj, weights)


def _check_adjacency(adjacency):
  adj = np.asarray(adjacency).astype(bool)
  if adj.ndim != 2 or adj.shape[0] != adj.shape[1]:
    raise ValueError(f'adjacency must be a square matrix, got shape {adj.shape}')
  if not np.array_equal(adj, adj.T):
    raise ValueError('adjacency must be symmetric (an undirected graph)')
  return adj & ~np.eye(len(adj), dtype=bool)


def _connected(adj):
  seen, frontier = {0}, [0]
  while frontier:
    nxt = [int(j) for i in frontier for j in np.flatnonzero(adj[i]) if int(j) not in seen]
    seen.update(nxt)
    frontier = nxt
  return len(seen) == len(adj)
