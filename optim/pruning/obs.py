"""Optimal Brain Surgeon pruning with M-FAC's static inverse Fisher, and the magnitude baseline.

Frantar, Kurtic & Alistarh, arXiv 2107.03356, Section 3.1 (the OBS application of the static algorithm), as the
authors' ``MFACPruner`` in IST-DASLab/M-FAC ``main_prun.py``. Removing weight ``q`` from a model whose loss is
locally ``L(w + dw) ~ L(w) + 1/2 dw^T F dw`` costs at least ``rho_q = w_q^2 / (2 [F^{-1}]_qq)``, reached by the
update ``dw = -(w_q / [F^{-1}]_qq) F^{-1} e_q`` (LeCun, Denker & Solla 1990; Hassibi & Stork 1993). Weights are
flat vectors (``jax.flatten_util.ravel_pytree`` of the prunable leaves), masks boolean of the same size.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from optim.pruning import static_fisher


def _check(name: str, weights: jax.Array, mask: jax.Array, num_prune: int) -> None:
  if weights.ndim != 1 or mask.shape != weights.shape:
    raise ValueError(f'{name}: weights must be flat and mask of the same shape, got {weights.shape} and '
                     f'{mask.shape}')
  if not isinstance(num_prune, int) or not 0 <= num_prune <= weights.shape[0]:
    raise ValueError(f'{name}: num_prune must be an int in [0, {weights.shape[0]}], got {num_prune!r}')


def obs_scores(weights: jax.Array, h: static_fisher.StaticFisherInverse, mask: jax.Array | None = None
               ) -> jax.Array:
  """OBS saliencies ``rho_q = w_q^2 / (2 [F^{-1}]_qq)``: the least loss increase of removing ``w_q`` alone.

  Pruned coordinates (``mask`` False) score ``+inf`` so they are never chosen again.
  """
  scores = weights ** 2 / (2.0 * static_fisher.fisher_inverse_diagonal(h).astype(weights.dtype))
  return scores if mask is None else jnp.where(mask, scores, jnp.inf)


def obs_prune(weights: jax.Array, grads: jax.Array, mask: jax.Array, num_prune: int, damping: float = 1e-5,
              block_size: int | None = None) -> tuple[jax.Array, jax.Array]:
  """One OBS pruning step with M-FAC's static inverse Fisher: remove the ``num_prune`` lowest-``rho`` weights.

  As the authors' ``MFACPruner.prune``: ``F = damping I + (1/m) G^T G`` over the coordinates still alive (the
  gradients' pruned columns are zeroed, which makes ``F`` block-diagonal with the pruned part apart, the same
  inverse on the alive part as the authors' restriction); the set ``Q`` of the ``num_prune`` lowest scores
  :func:`obs_scores` is removed with the *sum* of the single-weight OBS updates,

      w <- w - F^{-1} sum_{q in Q} (w_q / [F^{-1}]_qq) e_q,      then w_Q <- 0,

  which ignores the interaction between removed weights (the joint OBS update would solve a ``|Q| x |Q|``
  system); the paper and its code make up for it by pruning in several steps, recomputing the gradients and
  ``F`` at the new weights in between (``nrecomps``, 16 in their scripts).

  Args:
    weights: flat weights ``w`` (``d``).
    grads: ``(m, d)`` gradients at ``weights`` (per-example or per-batch, the empirical Fisher's ``g_i``).
    mask: ``(d,)`` bool, True for the weights still alive.
    num_prune: how many alive weights to remove now (static).
    damping: ``lambda`` (the authors' ``damp``, default theirs).
    block_size: ``None`` for the full Fisher, else blocks of consecutive coordinates (see
      :func:`optim.pruning.static_fisher_inverse`).

  Returns:
    ``(weights, mask)`` after the step; pruned weights are exactly 0.

  Example:
    >>> import jax.numpy as jnp
    >>> from optim.pruning import obs_prune
    >>> w, g = jnp.array([1.0, 0.5]), jnp.array([[1.0, 0.0], [0.0, 4.0]])
    >>> obs_prune(w, g, jnp.array([True, True]), 1, damping=1e-3)[1].tolist()  # w_2 is small but costly
    [False, True]
  """
  _check('obs_prune', weights, mask, num_prune)
  return _obs_prune(weights, grads, mask, jnp.asarray(damping), num_prune, block_size)


@functools.partial(jax.jit, static_argnames=('num_prune', 'block_size'))
def _obs_prune(weights, grads, mask, damping, num_prune, block_size):
  grads = jnp.where(mask[None, :], grads, 0.0)
  h = static_fisher.static_fisher_inverse(grads, damping, block_size)
  diag = static_fisher.fisher_inverse_diagonal(h).astype(weights.dtype)
  drop = lax.top_k(-obs_scores(weights, h, mask), num_prune)[1]
  direction = jnp.zeros_like(weights).at[drop].set(-weights[drop] / diag[drop])
  new_mask = mask.at[drop].set(False)
  weights = weights + static_fisher.fisher_inverse_product(h, direction)
  return jnp.where(new_mask, weights, 0.0), new_mask


def magnitude_prune(weights: jax.Array, mask: jax.Array, num_prune: int) -> tuple[jax.Array, jax.Array]:
  """Magnitude pruning (the authors' ``MagPruner``): zero the ``num_prune`` alive weights of least ``|w|``."""
  _check('magnitude_prune', weights, mask, num_prune)
  return _magnitude_prune(weights, mask, num_prune)


@functools.partial(jax.jit, static_argnames='num_prune')
def _magnitude_prune(weights, mask, num_prune):
  drop = lax.top_k(-jnp.where(mask, jnp.abs(weights), jnp.inf), num_prune)[1]
  new_mask = mask.at[drop].set(False)
  return jnp.where(new_mask, weights, 0.0), new_mask
