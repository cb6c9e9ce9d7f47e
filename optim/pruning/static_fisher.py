"""M-FAC's static algorithm: the inverse of a damped empirical Fisher built from a fixed set of m gradients.

Frantar, Kurtic & Alistarh, "M-FAC: Efficient Matrix-Free Approximations of Second-Order Information",
arXiv 2107.03356, Section 3 (the algorithm for network compression), and the authors' ``prun.py``
(``HInvFastBatch``, ``HInvFastBlock``, ``HInvFastSwap``) in IST-DASLab/M-FAC.

``F = lambda I + (1/m) sum_i g_i g_i^T`` is inverted through the paper's chain of ``m`` Sherman-Morrison
updates, ``F_0^{-1} = I / lambda``, ``F_i^{-1} = F_{i-1}^{-1} - v_i v_i^T / D_i`` with ``v_i = F_{i-1}^{-1} g_i``
and ``D_i = m + g_i^T v_i``, so that

    F^{-1} x = x / lambda - sum_i v_i (v_i^T x) / D_i,      [F^{-1}]_jk = delta_jk / lambda - sum_i v_ij v_ik / D_i.

Storing the ``m`` vectors ``v_i`` and scalars ``D_i`` (one ``m x d`` buffer, as the gradients) makes an inverse
Fisher-vector product ``O(dm)`` and any single element of ``F^{-1}`` (the OBS denominators ``[F^{-1}]_qq``) an
``O(m)`` query. The optimizer of Section 5 (the sliding window) is :func:`optim.mfac`.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp

_HIGHEST = jax.lax.Precision.HIGHEST


@functools.partial(jax.tree_util.register_dataclass, data_fields=['vectors', 'denominators', 'damping'],
                   meta_fields=['size'])
@dataclasses.dataclass(frozen=True)
class StaticFisherInverse:
  """The precomputed inverse of ``F = lambda I + (1/m) G^T G``, blockwise (one block: the full matrix).

  ``vectors[b, i]`` is ``v_i`` of block ``b`` and ``denominators[b, i]`` is ``D_i``; coordinates are the
  flattened parameters, block ``b`` holding ``b * block_size ... (b + 1) * block_size - 1`` (the last block
  padded with coordinates that have no gradient, whose inverse is ``1 / lambda``).
  """

  vectors: jax.Array  # (num_blocks, m, block_size)
  denominators: jax.Array  # (num_blocks, m)
  damping: jax.Array  # lambda
  size: int  # d, the number of real coordinates


@functools.partial(jax.jit, static_argnames='block_size')
def _precompute(grads: jax.Array, damping: jax.Array, block_size: int) -> StaticFisherInverse:
  m, d = grads.shape
  num_blocks = -(-d // block_size)
  dtype = jnp.promote_types(grads.dtype, jnp.float32)
  padded = jnp.pad(grads.astype(dtype), ((0, 0), (0, num_blocks * block_size - d)))
  blocks = padded.reshape(m, num_blocks, block_size).transpose(1, 0, 2)  # (num_blocks, m, block_size)
  damping = damping.astype(dtype)

  def one_block(g):
    gram = jnp.matmul(g, g.T, precision=_HIGHEST)
    chol = jnp.linalg.cholesky(m * jnp.eye(m, dtype=dtype) + gram / damping)  # L D^{1/2}
    scaled = jax.scipy.linalg.solve_triangular(chol, g, lower=True) / damping  # D^{-1/2} L^{-1} G / lambda
    root = jnp.diagonal(chol)
    return scaled * root[:, None], root ** 2  # v_i = rows of L^{-1} G / lambda, D_i

  vectors, denominators = jax.vmap(one_block)(blocks)
  return StaticFisherInverse(vectors, denominators, damping, d)


def static_fisher_inverse(grads: jax.Array, damping: float, block_size: int | None = None
                          ) -> StaticFisherInverse:
  """Precomputes ``F^{-1}`` for ``F = damping I + (1/m) G^T G`` from ``m`` gradients, in ``O(d m^2 + m^3)``.

  The recursion ``v_i = F_{i-1}^{-1} g_i = g_i / lambda - sum_{j<i} v_j (v_j^T g_i) / D_j`` (the paper's
  Section 3, the authors' ``HInvFastBatch``) is the unit lower-triangular ``LDL^T`` factorisation of the
  ``m x m`` matrix ``m I + G G^T / lambda``: with ``L D L^T`` that factorisation, ``V = L^{-1} G / lambda`` holds
  the ``v_i`` as rows and ``D`` the ``D_i``. It is computed here in that form, one Gram matrix (``O(d m^2)``), one
  Cholesky factorisation (``O(m^3)``) and one triangular solve against ``G`` (``O(d m^2)``), instead of ``m``
  sequential passes; the numbers are the paper's (the tests compare with the recursion written out).

  Args:
    grads: ``(m, d)`` gradients (rows), e.g. per-example gradients flattened with
      ``jax.flatten_util.ravel_pytree``. Rows of zeros count in ``m``.
    damping: ``lambda > 0``.
    block_size: ``None`` for the full ``d x d`` Fisher (the authors' ``HInvFastSwap``); else ``F`` is
      block-diagonal with blocks of this many consecutive coordinates, each inverted on its own (the blocked
      variant ``HInvFastBlock`` the paper uses for large models, ``O(d m^2)`` in total).

  Returns:
    A :class:`StaticFisherInverse` for :func:`fisher_inverse_product`, :func:`fisher_inverse_diagonal` and
    :func:`fisher_inverse_entry`.

  Example:
    >>> import jax.numpy as jnp
    >>> from optim.pruning import static_fisher_inverse, fisher_inverse_diagonal
    >>> h = static_fisher_inverse(jnp.array([[2.0, 0.0]]), damping=1.0)   # F = diag(1 + 4, 1)
    >>> fisher_inverse_diagonal(h).tolist()
    [0.2, 1.0]
  """
  grads = jnp.asarray(grads)
  if grads.ndim != 2:
    raise ValueError(f'static_fisher_inverse: grads must be (m, d), got shape {grads.shape}')
  if not (isinstance(damping, jax.Array) or damping > 0):
    raise ValueError(f'static_fisher_inverse: damping must be > 0, got {damping!r}')
  block_size = grads.shape[1] if block_size is None else block_size
  if not isinstance(block_size, int) or block_size < 1:
    raise ValueError(f'static_fisher_inverse: block_size must be an int >= 1 or None, got {block_size!r}')
  return _precompute(grads, jnp.asarray(damping), block_size)


def _blocks(h: StaticFisherInverse, x: jax.Array) -> jax.Array:
  num_blocks, _, block_size = h.vectors.shape
  return jnp.pad(x, (0, num_blocks * block_size - h.size)).reshape(num_blocks, block_size)


@jax.jit
def fisher_inverse_product(h: StaticFisherInverse, x: jax.Array) -> jax.Array:
  """``F^{-1} x = x / lambda - sum_i v_i (v_i^T x) / D_i`` for a flat ``x`` of size ``d``: ``O(d m)``."""
  xb = _blocks(h, x.astype(h.vectors.dtype))
  coeff = jnp.einsum('bmk,bk->bm', h.vectors, xb, precision=_HIGHEST) / h.denominators
  out = xb / h.damping - jnp.einsum('bm,bmk->bk', coeff, h.vectors, precision=_HIGHEST)
  return out.reshape(-1)[:h.size].astype(x.dtype)


@jax.jit
def fisher_inverse_diagonal(h: StaticFisherInverse) -> jax.Array:
  """The diagonal of ``F^{-1}``: ``1 / lambda - sum_i v_ij^2 / D_i`` for every ``j`` (``O(m)`` each)."""
  diag = 1.0 / h.damping - jnp.einsum('bmk,bm->bk', h.vectors ** 2, 1.0 / h.denominators, precision=_HIGHEST)
  return diag.reshape(-1)[:h.size]


@jax.jit
def fisher_inverse_entry(h: StaticFisherInverse, j: jax.Array, k: jax.Array) -> jax.Array:
  """One element ``[F^{-1}]_jk`` (flat indices) in ``O(m)``: the paper's single-element query.

  Coordinates in different blocks give 0 (the blocked Fisher is block-diagonal).
  """
  block_size = h.vectors.shape[2]
  bj, ij = jnp.divmod(j, block_size)
  bk, ik = jnp.divmod(k, block_size)
  value = (j == k) / h.damping - jnp.sum(h.vectors[bj, :, ij] * h.vectors[bk, :, ik] / h.denominators[bj])
  return jnp.where(bj == bk, value, 0.0)
