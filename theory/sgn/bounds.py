"""Block bounds of a game's Jacobian, the SGN matrix ``C(w)`` and margin ``alpha*(w)``, the two-player band and the
general-N small-gain test (definitions in :mod:`theory.sgn`)."""

from __future__ import annotations

import itertools
import math
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from scipy import optimize

from theory.numerics import float64
from theory.sgn.linalg import sym


def _offsets(sizes: Sequence[int]) -> list[slice]:
  if any(int(s) < 1 for s in sizes):
    raise ValueError(f'sizes must be positive block sizes, got {sizes!r}')
  edges = np.concatenate([[0], np.cumsum(sizes)])
  return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def block_bounds(jacobian: np.ndarray, sizes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
  """Curvature ``mu_i = lambda_min(sym J_ii)`` and couplings ``L_ij = ||J_ij||_2`` (zero diagonal) at a point.

  Args:
    jacobian: the ``D x D`` Jacobian of the pseudo-gradient, ``D = sum(sizes)``.
    sizes: player block sizes.

  Returns:
    ``(mu, L)`` with shapes ``(N,)`` and ``(N, N)``.
  """
  jac = np.asarray(jacobian, np.float64)
  blocks = _offsets(sizes)
  if jac.shape != (blocks[-1].stop,) * 2:
    raise ValueError(f'jacobian must be {blocks[-1].stop}x{blocks[-1].stop} for sizes {sizes}, got {jac.shape}')
  n = len(blocks)
  mu = np.array([np.linalg.eigvalsh(sym(jac[b, b]))[0] for b in blocks])
  coupling = np.zeros((n, n))
  for i, j in itertools.permutations(range(n), 2):
    coupling[i, j] = np.linalg.norm(jac[blocks[i], blocks[j]], 2)
  return mu, coupling


def region_bounds(pseudo_gradient: Callable, points: np.ndarray, sizes: Sequence[int]
                  ) -> tuple[np.ndarray, np.ndarray]:
  """``mu_i = min`` and ``L_ij = max`` of :func:`block_bounds` over sampled points (``jax.jacfwd``).

  Args:
    pseudo_gradient: ``x -> F(x)`` (a JAX function of a flat vector).
    points: ``(P, D)`` points of the region.
    sizes: player block sizes.

  Returns:
    ``(mu, L)``: bounds valid on the sampled points (a certificate for the region only if they are).
  """
  jac_fn = float64(lambda x: np.asarray(jax.jacfwd(pseudo_gradient)(jnp.asarray(x, jnp.float64))))
  bounds = [block_bounds(jac_fn(p), sizes) for p in np.atleast_2d(points)]
  return np.min([b[0] for b in bounds], axis=0), np.max([b[1] for b in bounds], axis=0)


def _check_bounds(mu, coupling, w=None):
  mu = np.asarray(mu, np.float64)
  coupling = np.asarray(coupling, np.float64)
  if mu.ndim != 1 or coupling.shape != (mu.size, mu.size):
    raise ValueError(f'mu must be (N,) and L (N, N); got {mu.shape} and {coupling.shape}')
  if np.any(coupling < 0) or not np.all(np.isfinite(coupling)):
    raise ValueError('L (the couplings) must be finite and non-negative')
  if w is None:
    return mu, coupling
  w = np.asarray(w, np.float64)
  if w.shape != mu.shape or np.any(~(w > 0)) or not np.all(np.isfinite(w)):
    raise ValueError(f'w must be {mu.size} positive finite weights, got {w!r}')
  return mu, coupling, w


def sgn_matrix(mu, coupling, w) -> np.ndarray:
  """``C(w) = W K + K^T W``: ``C_ii = 2 w_i mu_i``, ``C_ij = -(w_i L_ij + w_j L_ji)``."""
  mu, coupling, w = _check_bounds(mu, coupling, w)
  k = np.diag(mu) - coupling * (1 - np.eye(mu.size))
  return np.diag(w) @ k + k.T @ np.diag(w)


def sgn_margin(mu, coupling, w) -> float:
  """``alpha*(w) = lambda_min(W^{-1/2} C(w) W^{-1/2}) / 2`` (the official code's definition)."""
  c = sgn_matrix(mu, coupling, w)
  s = 1 / np.sqrt(np.asarray(w, np.float64))
  return 0.5 * float(np.linalg.eigvalsh(s[:, None] * c * s[None, :])[0])


def two_player_margin(mu, coupling, r) -> np.ndarray:
  """``alpha*(r)`` for ``w = (1, r)``, vectorised over ``r`` (closed form of a 2x2 ``lambda_min``)."""
  mu, coupling = _check_bounds(mu, coupling)
  r = np.asarray(r, np.float64)
  c = 0.5 * (coupling[0, 1] / np.sqrt(r) + coupling[1, 0] * np.sqrt(r))
  return 0.5 * (mu[0] + mu[1]) - np.sqrt(0.25 * (mu[0] - mu[1]) ** 2 + c ** 2)


def two_player_band(mu, coupling, alpha: float = 0.0) -> tuple[float, float]:
  """The ratios ``r = w_2 / w_1`` with ``alpha*(r) >= alpha``: ``[r_-, r_+]`` or ``(nan, nan)`` if empty."""
  mu, coupling = _check_bounds(mu, coupling)
  if mu.size != 2:
    raise ValueError(f'two_player_band needs 2 players, got {mu.size}')
  l12, l21 = coupling[0, 1], coupling[1, 0]
  p = (mu[0] - alpha) * (mu[1] - alpha)
  if mu[0] <= alpha or mu[1] <= alpha or p <= l12 * l21 or l21 == 0:
    return math.nan, math.nan
  base, rad = 2 * p - l12 * l21, 2 * math.sqrt(p * (p - l12 * l21))
  return (base - rad) / l21 ** 2, (base + rad) / l21 ** 2


def sgn_feasible(mu, coupling) -> bool:
  """Whether some ``w > 0`` gives ``alpha*(w) > 0``: all ``mu_i > 0`` and ``rho(diag(mu)^{-1} L) < 1``."""
  mu, coupling = _check_bounds(mu, coupling)
  if np.any(mu <= 0):
    return False
  gain = coupling * (1 - np.eye(mu.size)) / mu[:, None]
  return bool(np.max(np.abs(np.linalg.eigvals(gain))) < 1)


def optimal_weights(mu, coupling, restarts: int = 4, seed: int = 0) -> tuple[np.ndarray, float]:
  """Weights maximising ``alpha*(w)`` (normalised to ``w_1 = 1``) and the margin reached.

  Two players: the closed form ``r = L_12 / L_21``. Otherwise Nelder-Mead on ``log w`` from the weights of
  the M-matrix certificate (left Perron vector of ``diag(mu)^{-1} L``) and random restarts.
  """
  mu, coupling = _check_bounds(mu, coupling)
  n = mu.size
  if n == 2 and coupling[0, 1] > 0 and coupling[1, 0] > 0:
    w = np.array([1.0, coupling[0, 1] / coupling[1, 0]])
    return w, sgn_margin(mu, coupling, w)
  objective = lambda z: -sgn_margin(mu, coupling, np.exp(np.concatenate([[0.0], z])))
  starts = [np.zeros(n - 1)]
  if np.all(mu > 0):
    vals, vecs = np.linalg.eig((coupling / mu[:, None]).T)
    v = np.abs(np.real(vecs[:, np.argmax(np.real(vals))])) + 1e-12
    starts.append(np.log(v[1:] / v[0]))
  rng = np.random.default_rng(seed)
  starts += [rng.normal(scale=2.0, size=n - 1) for _ in range(restarts)]
  best = min((optimize.minimize(objective, z0, method='Nelder-Mead',
                                options={'xatol': 1e-10, 'fatol': 1e-12, 'maxiter': 4000}) for z0 in starts),
             key=lambda res: res.fun)
  w = np.exp(np.concatenate([[0.0], best.x]))
  return w, -float(best.fun)
