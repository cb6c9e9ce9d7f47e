"""SWAN: stateless SGD on gradients normalised (GradNorm) and whitened (GradWhitening).

Ma, Gong, Scetbon & Meeds, "SWAN: SGD with Normalization and Whitening Enables Stateless LLM Training",
arXiv 2412.13148. No code was released (the paper points at github.com/microsoft/msr_optim, which is not
public), so this follows the paper's equations; the choices the paper leaves open are named below.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from optim import checks
from optim.primitives import newton_schulz

DEFAULT_NS_STEPS = 10
NORM_AXES = {'fan_in': 0, 'fan_out': 1}  # axes of the (fan_in, fan_out) matrix view


def _is_zero(value: Any) -> bool:
  # A Python zero only: under inject_hyperparams the value is an array in init and a tracer in update, and
  # both must build the same chain.
  return isinstance(value, (int, float)) and value == 0


def grad_norm(g: jax.Array, axis: int = 0, eps: float = 1e-8) -> jax.Array:
  """GradNorm: standardises ``g`` along ``axis`` to mean 0 and (biased) standard deviation 1.

  ``(g - mean) / (std + eps)`` with ``mean`` and ``std`` (ddof 0) taken along ``axis``.

  Args:
    g: a gradient matrix.
    axis: the axis the statistics run over (the other axis indexes the normalised vectors).
    eps: added to the standard deviation, so that a constant vector maps to zero.

  Returns:
    The normalised array, shaped like ``g``.
  """
  centred = g - jnp.mean(g, axis=axis, keepdims=True)
  std = jnp.sqrt(jnp.mean(jnp.square(centred), axis=axis, keepdims=True))
  return centred / (std + eps)


def _swan_matrix(g: jax.Array, ns_steps: int, norm_axis: int, rescale: bool, eps) -> jax.Array:
  shape, dtype = g.shape, g.dtype
  # Whitening in at least float32, as the paper does for bf16 training (its Appendix K).
  m = g.reshape(-1, shape[-1]).astype(jnp.promote_types(dtype, jnp.float32))
  normalised = grad_norm(m, norm_axis, eps)
  size = jnp.linalg.norm(normalised)
  # whiten() normalises by the Frobenius norm, which is 0/0 for a zero gradient: give it a zero update instead.
  white = jnp.where(size > 0, newton_schulz.whiten(normalised, ns_steps), 0.0)
  if rescale:
    white = white * (size / jnp.maximum(jnp.linalg.norm(white), jnp.finfo(white.dtype).tiny))
  return white.reshape(shape).astype(dtype)


def _swan_vector(g: jax.Array, eps: float) -> jax.Array:
  g32 = g.astype(jnp.promote_types(g.dtype, jnp.float32))
  rms = jnp.sqrt(jnp.mean(jnp.square(g32)))
  return (g32 / (rms + eps)).astype(g.dtype)


def scale_by_swan(ns_steps: int | None = None, norm_axis: str = 'fan_in', rescale: bool = True,
                  eps: float = 1e-8) -> optax.GradientTransformation:
  r"""SWAN's direction: GradNorm then GradWhitening of the current gradient; keeps no state at all.

  For a gradient matrix :math:`G` (conv kernels are viewed as ``(h*w*in, out)``):

  .. math::
     \tilde G = \frac{G - \bar g}{s + \epsilon}, \qquad
     \Delta = (\tilde G \tilde G^\top)^{-1/2} \tilde G \;(= U V^\top \text{ for } \tilde G = U S V^\top), \qquad
     \Delta \leftarrow \frac{\|\tilde G\|_F}{\|\Delta\|_F} \Delta \text{ (if rescale)},

  with :math:`\bar g, s` the mean and biased standard deviation over ``norm_axis``. The inverse square root
  is :func:`optim.whiten` (coupled Newton-Schulz, the paper's Algorithm 2 with its
  :math:`\beta = 1/2`; the smaller Gram matrix is used, so tall and wide gradients give the same
  :math:`UV^\top`). With ``rescale`` every entry of :math:`\Delta` has unit RMS, Adam's scale, so Adam-like
  learning rates carry over.

  Conventions where the paper leaves a choice:

  * GradNorm standardises each output unit's gradient across its inputs (``norm_axis='fan_in'``): the
    paper's rows of a PyTorch ``(out, in)`` weight, which is axis 0 of flax's ``(in, out)`` kernels.
    ``'fan_out'`` standardises across outputs instead.
  * 10 Newton-Schulz iterations by default (cost comparable to Muon's five quintic steps);
    GradNorm flattens the spectrum, which is what makes few iterations enough. More steps, closer to
    :math:`UV^\top`.
  * Non-matrix leaves (scalars, biases, norms) cannot be whitened and must stay stateless, so they get the
    RMS-normalised gradient :math:`g / (\mathrm{rms}(g) + \epsilon)`, whose entries also have unit RMS (a
    scalar gets :math:`\mathrm{sign}(g)`). The paper's LLM setup trains embeddings and the head with Adam;
    to do that, combine with ``optax.partition`` (it adds Adam's state for those leaves only).

  Args:
    ns_steps: Newton-Schulz iterations for :math:`(\tilde G \tilde G^\top)^{-1/2}` (``None``: 10; an int
      fixes the iteration count, so with ``optax.inject_hyperparams`` list it in ``static_args``).
    norm_axis: ``'fan_in'`` or ``'fan_out'``: the axis of the ``(fan_in, fan_out)`` gradient matrix over
      which GradNorm takes its statistics.
    rescale: the paper's optional step rescaling :math:`\Delta` to the Frobenius norm of :math:`\tilde G`.
    eps: added to the standard deviation (GradNorm) and to the RMS (non-matrix leaves).

  Returns:
    An ``optax.GradientTransformation`` whose state is ``optax.EmptyState()``.

  Example:
    >>> import jax.numpy as jnp
    >>> from optim import scale_by_swan
    >>> tx = scale_by_swan()
    >>> g = {'w': jnp.array([[1.0, -2.0], [3.0, 0.5], [0.0, 1.0]]), 'b': jnp.array([3.0, -4.0])}
    >>> u, state = tx.update(g, tx.init(g))
    >>> [f'{v:.3f}' for v in u['b'].tolist()], jax.tree.leaves(state)
    (['0.849', '-1.131'], [])
  """
  ns_steps = DEFAULT_NS_STEPS if ns_steps is None else ns_steps
  with checks.owner('scale_by_swan'):
    checks.positive_int('ns_steps', ns_steps)
    checks.non_negative('eps', eps)
    checks.one_of('norm_axis', norm_axis, tuple(NORM_AXES))
  axis = NORM_AXES[norm_axis]

  def direction(g):
    if g.ndim >= 2:
      return _swan_matrix(g, int(ns_steps), axis, rescale, eps)
    return _swan_vector(g, eps)

  def init_fn(params):
    del params
    return optax.EmptyState()

  def update_fn(updates, state, params=None):
    del params
    return jax.tree.map(direction, updates), state

  return optax.GradientTransformation(init_fn, update_fn)


def swan(learning_rate: optax.ScalarOrSchedule, ns_steps: int | None = None, norm_axis: str = 'fan_in',
         rescale: bool = True, eps: float = 1e-8, weight_decay: float = 0.0) -> optax.GradientTransformation:
  r"""SWAN (arXiv 2412.13148): :math:`\theta \leftarrow \theta - \eta(\mathrm{SWAN}(g) + \lambda\theta)`.

  ``chain(scale_by_swan, add_decayed_weights, scale_by_learning_rate)``; see :func:`scale_by_swan` for the
  update and the conventions. Stateless: the state holds no arrays (unless the learning rate is a schedule,
  which keeps a step count).

  Args:
    learning_rate: step size or schedule.
    ns_steps: Newton-Schulz iterations of the whitening (``None``: 10).
    norm_axis: GradNorm's axis, ``'fan_in'`` (default) or ``'fan_out'``.
    rescale: rescale the whitened matrix to the norm of the normalised gradient.
    eps: GradNorm's epsilon.
    weight_decay: decoupled weight decay :math:`\lambda` (multiplied by the learning rate).

  Returns:
    An ``optax.GradientTransformation``.

  Example:
    >>> import jax, jax.numpy as jnp, optax
    >>> from optim import swan
    >>> params = {'w': jnp.ones((4, 3)), 'b': jnp.zeros(3)}
    >>> tx = swan(1e-2)
    >>> g = jax.tree.map(lambda p: jnp.arange(p.size, dtype=p.dtype).reshape(p.shape) % 3 - 1.0, params)
    >>> u, _ = tx.update(g, tx.init(params), params)
    >>> jax.tree.map(jnp.shape, optax.apply_updates(params, u))
    {'b': (3,), 'w': (4, 3)}
  """
  with checks.owner('swan'):
    checks.learning_rate(learning_rate)
    checks.non_negative('weight_decay', weight_decay)
    # Without decay the chain needs no params, so the stateless update works on any tree alone.
    decay = [] if _is_zero(weight_decay) else [optax.add_decayed_weights(weight_decay)]
    return optax.chain(scale_by_swan(ns_steps, norm_axis, rescale, eps), *decay,
                       optax.scale_by_learning_rate(learning_rate))
