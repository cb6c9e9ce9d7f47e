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
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from decentral import axis


class Topology(NamedTuple):
  """A mixing matrix and, if it is circulant, its diagonals: ``shifts = ((s, w), ...)`` with W[i, i+s] = w."""

  mixing: np.ndarray
  shifts: tuple[tuple[int, float], ...] | None = None

  @property
  def n(self) -> int:
    return self.mixing.shape[0]


def circulant(n: int, shifts: dict[int, float]) -> Topology:
  """The circulant topology with W[i, (i + s) mod n] = w for each (s, w); weights must sum to one."""
  _check_n(n)
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
  _check_n(n)
  if n == 1:
    return circulant(1, {0: 1.0})
  if n == 2:
    return circulant(2, {0: 0.5, 1: 0.5})
  return circulant(n, {-1: 1 / 3, 0: 1 / 3, 1: 1 / 3})


def spectral_gap(mixing: np.ndarray) -> float:
  """1 - |lambda_2| of a symmetric mixing matrix, lambda_2 the second-largest eigenvalue in modulus."""
  eig = np.sort(np.abs(np.linalg.eigvalsh(np.asarray(mixing, dtype=np.float64))))[::-1]
  return float(1.0 - eig[1]) if len(eig) > 1 else 1.0


def gossip(tree: Any, topology: Topology, axis_name: str) -> Any:
  """One gossip step for this worker: sum_j W_ij x_j, by ``ppermute`` when circulant, else gather + row."""
  n = axis.axis_size(axis_name)
  if n != topology.n:
    raise ValueError(f'topology has n={topology.n} workers but axis {axis_name!r} has {n}')
  if topology.shifts is not None:
    return _gossip_circulant(tree, topology.shifts, axis_name, n)
  row = jnp.asarray(topology.mixing)[axis.worker_index(axis_name)]
  return jax.tree.map(lambda x: jnp.tensordot(row.astype(x.dtype), lax.all_gather(x, axis_name), 1), tree)


def _gossip_circulant(tree, shifts, axis_name, n):
  def mix(x):
    out = jnp.zeros_like(x)
    for s, w in shifts:
      # Worker i needs x_{i+s}: worker j sends to j - s.
      received = x if s == 0 else lax.ppermute(x, axis_name, [(j, (j - s) % n) for j in range(n)])
      out = out + jnp.asarray(w, x.dtype) * received
    return out
  return jax.tree.map(mix, tree)


def _check_n(n):
  if not isinstance(n, (int, np.integer)) or n < 1:
    raise ValueError(f'n must be a positive integer, got {n!r}')
