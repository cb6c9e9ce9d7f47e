"""The coherence of per-example gradients (Chatterjee & Zielinski, arXiv 2203.10036 and 2008.01217).

For per-example gradients ``g_1..g_m`` of a sample ``S`` at fixed parameters,

    alpha(S) = E_{i,j}[g_i . g_j] / E_i[g_i . g_i] = ||sum_i g_i||^2 / (m sum_i ||g_i||^2)   (i, j uniform on S)

and the reported scale is ``m-coherence = m alpha(S)``: the number of examples of the sample that a small step
along one example's gradient helps, on average (the reading of 2008.01217's abstract). It is ``1`` for pairwise
orthogonal gradients, ``m`` for identical ones and ``0`` when the gradients sum to zero (at a stationary point of
the sample loss, so it falls near convergence by construction). It depends on ``m``: compare curves at one ``m``.
The O(m) form needs only the summed gradient and the per-example squared norms; :func:`gram_coherence` is the
O(m^2) definition from the explicit Gram matrix, the oracle.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from optim.primitives import per_example_grads
from theory.numerics import PyTree


def _num_examples(grads: PyTree) -> int:
  leaves = jax.tree.leaves(grads)
  if not leaves or any(leaf.ndim < 1 for leaf in leaves):
    raise ValueError('coherence: grads must be a non-empty pytree whose leaves share a leading example axis')
  m = leaves[0].shape[0]
  if any(leaf.shape[0] != m for leaf in leaves):
    raise ValueError('coherence: every leaf of grads needs the same leading (example) axis')
  return m


def alpha_coherence(grads: PyTree) -> jax.Array:
  r"""The coherence :math:`\alpha(S) = \|\sum_i g_i\|^2 / (m \sum_i \|g_i\|^2)`, in O(m).

  Args:
    grads: per-example gradients, a pytree whose leaves have a leading axis of size ``m``.

  Returns:
    A scalar in ``[0, 1]``: ``1/m`` for orthogonal gradients, ``1`` for identical ones.

  Example:
    >>> import jax.numpy as jnp
    >>> float(alpha_coherence(jnp.eye(4)))   # orthogonal: 1/m
    0.25

  arXiv 2203.10036 (alpha), 2008.01217 (m-coherence).
  """
  m = _num_examples(grads)
  leaves = jax.tree.leaves(grads)
  summed = sum(jnp.sum((jnp.ones(m, g.dtype) @ g.reshape(m, -1)) ** 2) for g in leaves)  # matmul: fast on CPU
  squares = sum(jnp.sum(g ** 2) for g in leaves)
  return summed / (m * squares)


def m_coherence(grads: PyTree) -> jax.Array:
  """``m * alpha(S)``, the m-coherence of arXiv 2008.01217: ``1`` for orthogonal gradients, ``m`` for identical.

  Example:
    >>> import jax.numpy as jnp
    >>> float(m_coherence(jnp.ones((5, 3))))
    5.0
  """
  return _num_examples(grads) * alpha_coherence(grads)


def gram_coherence(grads: PyTree) -> jax.Array:
  """``alpha(S)`` from its definition, the mean of the Gram matrix over the mean of its diagonal: O(m^2) memory
  and time, the oracle of :func:`alpha_coherence`.

  Example:
    >>> import jax.numpy as jnp
    >>> float(gram_coherence(jnp.array([[1.0, 0.0], [1.0, 0.0]])))
    1.0
  """
  m = _num_examples(grads)
  flat = jnp.concatenate([g.reshape(m, -1) for g in jax.tree.leaves(grads)], axis=1)
  gram = flat @ flat.T
  return jnp.mean(gram) / jnp.mean(jnp.diag(gram))


def sample_m_coherence(example_loss: Callable[[PyTree, Any], jax.Array], params: PyTree, sample: Any) -> jax.Array:
  """The m-coherence of the per-example gradients of ``example_loss`` over ``sample`` at ``params``.

  Per-example gradients come from :func:`optim.per_example_grads` (``vmap`` of ``grad``).

  Args:
    example_loss: ``example_loss(params, example)``, the loss of one example (no batch axis).
    params: the parameters.
    sample: a pytree whose leaves share a leading axis of size ``m`` (e.g. ``(x, y)``).

  Returns:
    The scalar ``m alpha(S)``.
  """
  return m_coherence(per_example_grads(example_loss, params, sample))
