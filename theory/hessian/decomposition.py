"""Dense Hessian oracles of the MLP's cross-entropy: ``H = G + R`` and Papyan's class split of ``G``.

``G = (1/N) sum_i J_i^T A_i J_i`` is the generalised Gauss-Newton part (``J_i`` the logit Jacobian,
``A_i = diag(p_i) - p_i p_i^T`` the softmax cross-entropy Hessian in logit space; PSD), ``R = H - G`` the
residual, and ``G = G_between + G_within`` the class decomposition (arXiv 1901.08244) whose within-class part
gives the bulk edge of the outlier rule (:mod:`theory.hessian.outliers`).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
import numpy as np

from theory.hessian.model import cross_entropy, mlp_logits
from theory.numerics import PyTree, float64, tree_float64


class Decomposition(NamedTuple):
  """Dense ``P x P`` matrices with ``hessian = gauss_newton + residual`` (order of ``ravel_pytree``)."""
  hessian: np.ndarray
  gauss_newton: np.ndarray
  residual: np.ndarray


def _logit_jacobian(params, x):
  flat, unravel = ravel_pytree(params)
  logits_fn = lambda w: mlp_logits(unravel(w), x)
  return logits_fn(flat), jax.jacrev(logits_fn)(flat)  # (N, k), (N, k, P)


def _softmax_hessians(logits):
  p = jax.nn.softmax(logits)
  return jax.vmap(lambda q: jnp.diag(q) - jnp.outer(q, q))(p)  # (N, k, k), A_i


@jax.jit
def _hessian_and_gauss_newton(params, x, y):
  flat, unravel = ravel_pytree(params)
  h = jax.hessian(lambda w: cross_entropy(unravel(w), x, y))(flat)
  logits, jac = _logit_jacobian(params, x)
  g = jnp.einsum('nkp,nkl,nlq->pq', jac, _softmax_hessians(logits), jac) / x.shape[0]
  return h, g


@float64
def exact_decomposition(params: PyTree, x: np.ndarray, y: np.ndarray) -> Decomposition:
  """The dense Hessian of the mean cross-entropy and its Gauss-Newton / residual split.

  ``H = jax.hessian`` of the loss in the raveled parameters; ``G = (1/N) sum_i J_i^T A_i J_i`` from the logit
  Jacobians ``J_i`` and ``A_i = diag(p_i) - p_i p_i^T``; ``R = H - G`` is the term
  ``(1/N) sum_i sum_c (p_ic - 1{c = y_i}) d^2 z_ic / dw^2`` that vanishes as the residuals ``p_i - e_{y_i}`` do.

  Args:
    params: MLP parameters.
    x: inputs ``(N, d)``.
    y: integer labels ``(N,)``.

  Returns:
    A :class:`Decomposition` of float64 NumPy arrays.

  Example:
    >>> import numpy as np
    >>> from theory.hessian import gaussian_clusters, init_mlp
    >>> x, y = gaussian_clusters(0, 8, 3, 2)
    >>> d = exact_decomposition(init_mlp(0, [3, 2, 2]), x, y)
    >>> d.hessian.shape, bool(np.linalg.eigvalsh(d.gauss_newton)[0] > -1e-6)   # the GGN is PSD
    ((14, 14), True)
  """
  params = tree_float64(params)
  h, g = _hessian_and_gauss_newton(params, jnp.asarray(x, jnp.float64), jnp.asarray(y))
  h, g = np.asarray(h), np.asarray(g)
  return Decomposition(h, g, h - g)


@functools.partial(jax.jit, static_argnames=('num_classes',))
def _class_parts(params, x, y, num_classes):
  logits, jac = _logit_jacobian(params, x)

  def sqrt_psd(a):
    e, v = jnp.linalg.eigh(a)
    return (v * jnp.sqrt(jnp.clip(e, 0.0))) @ v.T

  u = jnp.einsum('nkl,nlp->nkp', jax.vmap(sqrt_psd)(_softmax_hessians(logits)), jac)
  onehot = jax.nn.one_hot(y, num_classes, dtype=u.dtype)  # (N, k)
  counts = onehot.sum(0)
  means = jnp.einsum('ny,nkp->ykp', onehot, u) / jnp.maximum(counts, 1.0)[:, None, None]
  dev = u - means[y]
  n = x.shape[0]
  between = jnp.einsum('y,ykp,ykq->pq', counts / n, means, means)
  within = jnp.einsum('nkp,nkq->pq', dev, dev) / n
  return between, within


@float64
def class_decomposition(params: PyTree, x: np.ndarray, y: np.ndarray, num_classes: int
                        ) -> tuple[np.ndarray, np.ndarray]:
  """Papyan's split of the GGN into between-class and within-class parts: ``G = G_between + G_within``.

  With ``U_i = A_i^{1/2} J_i`` (so ``G = (1/N) sum_i U_i^T U_i``) and class means ``M_y``:
  ``G_between = sum_y pi_y M_y^T M_y`` and ``G_within = (1/N) sum_i (U_i - M_{y_i})^T (U_i - M_{y_i})``.
  The bulk edge of the outlier rule is ``lambda_max(G_within)``.

  Args:
    params: MLP parameters.
    x: inputs ``(N, d)``.
    y: integer labels ``(N,)`` in ``[0, num_classes)``.
    num_classes: ``k``.

  Returns:
    ``(G_between, G_within)``, dense float64 ``P x P`` arrays.
  """
  params = tree_float64(params)
  between, within = _class_parts(params, jnp.asarray(x, jnp.float64), jnp.asarray(y), num_classes)
  return np.asarray(between), np.asarray(within)
