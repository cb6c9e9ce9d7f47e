"""Sharpness of mini-batch Hessians against the batch size, next to Granziol, Zohren & Roberts' spiked
random-matrix prediction (arXiv 2006.09092).

``H_B = H + E``, ``E`` Wigner-like with ``s^2 = p_B E_i ||H_i - H||_F^2 / P`` and ``p_B = (N - B) / (B (N - 1))``
(the exact finite-population entry variance for batches drawn without replacement), giving
``lambda_max(H_B) ~ beta + s^2 / beta`` when ``beta = lambda_max(H) > s`` and the semicircle edge ``2 s``
otherwise. Measured (P = N = 600): the formula holds near ``B = N`` but underestimates ``lambda_max(H_B)``
six-fold at ``B = 8``. Per-sample Hessians have rank about ``k``, so the batch noise is Wishart-like, not Wigner,
and ``lambda_max(H_B)`` follows ``1/B`` there: the linear-scaling conclusion without the Wigner formula.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
import numpy as np
import optax

import optim
from theory.hessian.model import cross_entropy, mlp_logits
from theory.numerics import PyTree, float64, tree_float64


@jax.jit
def _per_sample_frobenius_sq(params, x, y):
  flat, unravel = ravel_pytree(params)

  def one(xy):
    xi, yi = xy
    h = jax.hessian(lambda w: cross_entropy(unravel(w), xi[None], yi[None]))(flat)
    return jnp.sum(h ** 2)

  return jax.lax.map(one, (x, y), batch_size=16)


def _batch_loss(params, x, y, mask):
  losses = optax.softmax_cross_entropy_with_integer_labels(mlp_logits(params, x), y)
  return jnp.sum(mask * losses) / jnp.sum(mask)


@functools.partial(jax.jit, static_argnames=('num_steps',))
def _top_eigenvalue(params, x, y, mask, key, num_steps):
  # The batch is a 0/1 mask over all N points, so every batch size shares one compilation.
  matvec = optim.hessian_matvec(_batch_loss, params, x, y, mask)
  values, _ = optim.ritz(optim.lanczos(matvec, params, key, num_steps))
  return values[-1]


def granziol_prediction(lambda_max: float, per_sample_variance: float, num_params: int, num_points: int,
                        batch_size: int) -> float:
  """Spiked-Wigner prediction of ``lambda_max(H_B)`` (Granziol, Zohren & Roberts, arXiv 2006.09092).

  ``H_B = H + E`` with ``E`` modelled as a Wigner matrix of entry variance ``p_B sigma^2``, where
  ``sigma^2 = E_i ||H_i - H||_F^2 / P^2`` is the mean per-sample entry variance and ``p_B = (N - B)/(B (N - 1))``
  (sampling without replacement). Its semicircle has radius ``2 s`` with ``s^2 = P p_B sigma^2``; a spike
  ``beta = lambda_max(H) > s`` moves to ``beta + s^2 / beta``, a smaller one is swallowed by the edge ``2 s``.
  With ``p_B ~ 1/B`` this is the paper's ``beta + (P/B) sigma^2 / beta``.

  Args:
    lambda_max: ``beta``, the top eigenvalue of the full-data Hessian.
    per_sample_variance: ``E_i ||H_i - H||_F^2``.
    num_params: ``P``.
    num_points: ``N``.
    batch_size: ``B``.

  Returns:
    The predicted top eigenvalue of ``H_B``.

  Example:
    >>> granziol_prediction(1.0, per_sample_variance=4.0, num_params=4, num_points=101, batch_size=1)
    2.0
  """
  p = (num_points - batch_size) / (batch_size * (num_points - 1))
  s = math.sqrt(p * per_sample_variance / num_params)
  return lambda_max + s * s / lambda_max if lambda_max > s else 2.0 * s


@float64
def batch_sharpness(params: PyTree, x: np.ndarray, y: np.ndarray, hessian: np.ndarray,
                    batch_sizes: Sequence[int] = (8, 16, 32, 64, 128, 256), num_batches: int = 10,
                    lanczos_steps: int = 60, seed: int = 0) -> dict[str, Any]:
  """``lambda_max`` of mini-batch Hessians against ``B``, measured by Lanczos (``optim.lanczos``) on
  ``optim.hessian_matvec`` of each batch loss, next to the spiked random-matrix prediction.

  Batches are drawn uniformly without replacement. ``E_i ||H_i - H||_F^2`` is exact: every per-sample Hessian
  is formed densely (one at a time) and reduced to its Frobenius norm.

  Args:
    params: MLP parameters.
    x: inputs ``(N, d)``.
    y: labels.
    hessian: the exact full-data Hessian (from :func:`exact_decomposition`).
    batch_sizes: values of ``B`` (``N`` is appended).
    num_batches: batches per ``B``.
    lanczos_steps: Lanczos steps for each top eigenvalue.
    seed: integer seed.

  Returns:
    ``{'batch_sizes', 'lambda_max' (len(B), num_batches), 'prediction', 'lambda_max_full',
    'per_sample_variance', 'num_params', 'inverse_scaling'}``; ``inverse_scaling`` is ``lambda_max(H_B)`` at
    the smallest ``B`` times ``B_min / B`` (the linear-scaling reference ``eta_max ~ B``).
  """
  params = tree_float64(params)
  x, y = jnp.asarray(x, jnp.float64), jnp.asarray(y)
  n, p = x.shape[0], hessian.shape[0]
  sizes = sorted({int(b) for b in batch_sizes if 1 <= b < n} | {n})
  beta = float(np.linalg.eigvalsh(hessian)[-1])
  variance = float(np.mean(np.asarray(_per_sample_frobenius_sq(params, x, y))) - np.sum(hessian ** 2))
  rng = np.random.default_rng(seed)
  lam = np.zeros((len(sizes), num_batches))
  for i, b in enumerate(sizes):
    for j in range(num_batches if b < n else 1):
      mask = np.zeros(n)
      mask[rng.choice(n, b, replace=False)] = 1.0
      lam[i, j] = float(_top_eigenvalue(params, x, y, jnp.asarray(mask), jax.random.key(seed + j), lanczos_steps))
    if b == n:
      lam[i, :] = lam[i, 0]
  pred = np.array([granziol_prediction(beta, variance, p, n, b) for b in sizes])
  mean = lam.mean(1)
  return {'batch_sizes': np.asarray(sizes), 'lambda_max': lam, 'prediction': pred, 'lambda_max_full': beta,
          'per_sample_variance': variance, 'num_params': p,
          'inverse_scaling': mean[0] * sizes[0] / np.asarray(sizes, np.float64)}
