"""The exact second-moment operator ``T(eta, B)`` of linearised SGD, its spectral radius and the batch factor.

``vec(M_{t+1}) = T vec(M_t)`` for ``M_t = E[(theta_t - theta*)(theta_t - theta*)^T]``, with rank-one per-sample
Hessians ``H_i = g_i g_i^T`` given by their gradients ``g_i`` (rows of ``grads``) and batches drawn uniformly
without replacement (see :mod:`theory.stability`).
"""

from __future__ import annotations

import numpy as np


def check_batch_size(num_points: int, batch_size: int) -> None:
  """Raises a ValueError unless ``n >= 2`` and ``1 <= B <= n``."""
  if num_points < 2:
    raise ValueError(f'need at least 2 samples, got {num_points}')
  if not 1 <= batch_size <= num_points:
    raise ValueError(f'batch_size must be in [1, {num_points}], got {batch_size}')


def noise_factor(num_points: int, batch_size: int) -> float:
  """``p_B = (n - B) / (B (n - 1))``: ``Cov(H_hat) = p_B Cov_i(H_i)`` for batches drawn without replacement.

  Example:
    >>> noise_factor(10, 1), noise_factor(10, 10)
    (1.0, 0.0)
  """
  check_batch_size(num_points, batch_size)
  return (num_points - batch_size) / (batch_size * (num_points - 1))


def as_grads(grads) -> np.ndarray:
  """Per-sample gradients as a finite float64 ``(n, d)`` array (a ValueError naming ``grads`` otherwise)."""
  g = np.asarray(grads, np.float64)
  if g.ndim != 2 or not np.all(np.isfinite(g)):
    raise ValueError(f'grads must be a finite (n, d) array of per-sample gradients, got shape {g.shape}')
  return g


def kron_parts(grads: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """``(H, H (x) H, E_i[H_i (x) H_i])`` for rank-one ``H_i = g_i g_i^T``."""
  n, d = grads.shape
  h = grads.T @ grads / n
  outer = np.einsum('ia,ib->iab', grads, grads).reshape(n, d * d)  # vec(H_i) = g_i (x) g_i
  return h, np.kron(h, h), outer.T @ outer / n  # H, H (x) H, E_i[H_i (x) H_i]


def second_moment_operator(grads, learning_rate: float, batch_size: int) -> np.ndarray:
  """The exact ``d^2 x d^2`` operator ``T`` with ``vec(M_{t+1}) = T vec(M_t)`` for linearised SGD.

  ``T = (I - eta H) (x) (I - eta H) + eta^2 p_B (E_i[H_i (x) H_i] - H (x) H)`` (module docstring), for
  rank-one ``H_i = g_i g_i^T`` and batches of size ``B`` drawn uniformly without replacement.

  Args:
    grads: per-sample gradients ``(n, d)``.
    learning_rate: ``eta``.
    batch_size: ``B``.

  Returns:
    float64 array ``(d^2, d^2)`` (row-major ``vec``).

  Example:
    >>> import numpy as np
    >>> t = second_moment_operator(np.array([[1.0], [3.0]]), 0.1, 1)   # H = 5, E[H_i^2] = 41
    >>> round(float(t[0, 0]), 6)   # (1 - 0.5)^2 + 0.01 (41 - 25)
    0.41
  """
  g = as_grads(grads)
  if not (np.isfinite(learning_rate) and learning_rate >= 0):
    raise ValueError(f'learning_rate must be finite and >= 0, got {learning_rate}')
  p = noise_factor(g.shape[0], batch_size)
  h, hh, ehh = kron_parts(g)
  a = np.eye(h.shape[0]) - learning_rate * h
  return np.kron(a, a) + learning_rate ** 2 * p * (ehh - hh)


def spectral_radius(grads, learning_rate: float, batch_size: int) -> float:
  """``rho(T)``: the per-step growth factor of ``E ||theta_t - theta*||^2`` (stable iff ``<= 1``).

  ``T`` is symmetric and PSD-cone preserving, so ``rho(T) = lambda_max(T)``; the absolute value is taken anyway.

  Example:
    >>> import numpy as np
    >>> round(spectral_radius(np.array([[1.0], [1.0]]), 1.5, 2), 6)   # GD on H = 1: (1 - 1.5)^2
    0.25
  """
  eig = np.linalg.eigvalsh(second_moment_operator(grads, learning_rate, batch_size))
  return float(max(eig[-1], -eig[0]))
