"""SLQ against the exact spectrum: the exact Wasserstein-1 distance between spectral measures, over the Lanczos
steps and probes of ``optim.slq`` on ``optim.hessian_matvec``."""

from __future__ import annotations

import functools
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

import optim
from theory.hessian.model import cross_entropy
from theory.numerics import PyTree, float64, tree_float64


def wasserstein1(nodes: np.ndarray, weights: np.ndarray, eigenvalues: np.ndarray) -> float:
  """Exact Wasserstein-1 distance between a discrete measure and the uniform measure on ``eigenvalues``.

  ``W1 = int |F(t) - F_exact(t)| dt`` for the two step CDFs, summed exactly over the merged support.

  Args:
    nodes: support points of the first measure (any shape; e.g. SLQ Ritz values ``(probes, m)``).
    weights: their masses, same shape, summing to one (SLQ weights divided by the probe count).
    eigenvalues: exact eigenvalues, each of mass ``1/P``.

  Returns:
    The distance (same units as the eigenvalues).

  Example:
    >>> import numpy as np
    >>> wasserstein1(np.array([0.0, 2.0]), np.array([0.5, 0.5]), np.array([1.0, 1.0]))
    1.0
  """
  nodes, weights = np.ravel(nodes).astype(np.float64), np.ravel(weights).astype(np.float64)
  eig = np.ravel(eigenvalues).astype(np.float64)
  points = np.concatenate([nodes, eig])
  mass = np.concatenate([weights / weights.sum(), -np.full(eig.size, 1.0 / eig.size)])
  order = np.argsort(points, kind='stable')
  cdf_gap = np.cumsum(mass[order])[:-1]
  return float(np.sum(np.abs(cdf_gap) * np.diff(points[order])))


@functools.partial(jax.jit, static_argnames=('num_steps', 'num_probes'))
def _slq(params, x, y, key, num_steps, num_probes):
  matvec = optim.hessian_matvec(cross_entropy, params, x, y)
  return optim.slq(matvec, params, key, num_steps, num_probes)


@float64
def slq_convergence(params: PyTree, x: np.ndarray, y: np.ndarray, eigenvalues: np.ndarray,
                    steps: Sequence[int] = (4, 8, 16, 32, 64), probes: Sequence[int] = (1, 4, 16),
                    repeats: int = 3, seed: int = 0) -> dict[str, Any]:
  """W1 distance between the SLQ estimate (``optim.slq`` on ``optim.hessian_matvec``) and
  the exact spectral measure of ``H``, over a grid of Lanczos steps ``m`` and probe counts.

  Args:
    params: MLP parameters.
    x: inputs.
    y: labels.
    eigenvalues: exact eigenvalues of ``H`` (the oracle).
    steps: Lanczos steps per probe.
    probes: numbers of probes.
    repeats: independent SLQ runs averaged per cell (W1 is random through the probes).
    seed: integer seed.

  Returns:
    ``{'steps', 'probes', 'w1' (len(steps), len(probes)), 'w1_std', 'spectral_range', 'nodes', 'weights'}``,
    the last two from the largest cell (for density plots). ``w1`` is the mean over ``repeats`` independent
    runs and ``w1_std`` their standard deviation.
  """
  params = tree_float64(params)
  x, y = jnp.asarray(x, jnp.float64), jnp.asarray(y)
  most = max(probes)
  w1 = np.zeros((len(steps), len(probes), repeats))
  for i, m in enumerate(steps):
    # One SLQ run per m with repeats * max(probes) independent probes; disjoint blocks of them give the
    # repeats, and the first v probes of a block the v-probe estimate (one compilation per m).
    quad = _slq(params, x, y, jax.random.fold_in(jax.random.key(seed), i), m, most * repeats)
    nodes, weights = np.asarray(quad.nodes), np.asarray(quad.weights)
    for r in range(repeats):
      for j, v in enumerate(probes):
        block = slice(r * most, r * most + v)
        w1[i, j, r] = wasserstein1(nodes[block], weights[block] / v, eigenvalues)
  last = slice(0, most)
  return {'steps': np.asarray(steps), 'probes': np.asarray(probes), 'w1': w1.mean(-1), 'w1_std': w1.std(-1),
          'spectral_range': float(np.ptp(eigenvalues)), 'nodes': nodes[last], 'weights': weights[last] / most}
