"""Directional sharpness of an update direction and the local quantities around it (Pan & Li, arXiv 2306.00204).

At parameters ``x`` with gradient ``g = grad f(x)`` and Hessian ``H``, a step ``x - eta v`` changes the loss, to
second order, by

    f(x - eta v) - f(x) ~ -eta <g, v> + (eta^2 / 2) v^T H v,

so a direction is good when its **gradient correlation** ``<g, v> / (||g|| ||v||)`` is large and its
**directional sharpness** ``v^T H v / ||v||^2`` is small. On this model the best step is
``eta* = <g, v> / v^T H v`` and the best decrease ``<g, v>^2 / (2 v^T H v)`` (when ``v^T H v > 0``). The paper
defines the sharpness for a unit ``v``; it is normalised by ``||v||^2`` here so that directions of any length
(SGD's ``g``, Adam's ``m / (sqrt(v) + eps)``) compare. ``H v`` is :func:`optim.hvp` (forward over reverse).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import optax

from optim.primitives import hvp
from theory.numerics import PyTree


def sharpness_along(loss_fn: Callable[..., jax.Array], params: PyTree, direction: PyTree, *args: Any) -> jax.Array:
  """Directional sharpness ``v^T H v / ||v||^2`` of ``loss_fn(params, *args)`` along ``direction``.

  Args:
    loss_fn: scalar ``loss_fn(params, *args)``.
    params: the point.
    direction: ``v``, a pytree like ``params`` (nonzero).
    *args: extra arguments of ``loss_fn`` (the batch), held fixed.

  Returns:
    The scalar Rayleigh quotient of the Hessian at ``direction``.

  Example:
    >>> import jax.numpy as jnp
    >>> f = lambda w: 0.5 * (1.0 * w[0] ** 2 + 100.0 * w[1] ** 2)
    >>> float(sharpness_along(f, jnp.zeros(2), jnp.array([1.0, 1.0])))   # (1 + 100) / 2
    50.5

  arXiv 2306.00204.
  """
  hv = hvp(loss_fn, params, direction, *args)
  return optax.tree.vdot(direction, hv) / optax.tree.vdot(direction, direction)


def gradient_correlation(grad: PyTree, direction: PyTree) -> jax.Array:
  """``<g, v> / (||g|| ||v||)``, the cosine between the gradient and the direction."""
  return optax.tree.vdot(grad, direction) / (optax.tree.norm(grad) * optax.tree.norm(direction))


def local_model(loss_fn: Callable[..., jax.Array], params: PyTree, direction: PyTree, *args: Any
                ) -> dict[str, jax.Array]:
  """The second-order model of ``loss_fn`` along ``direction`` at ``params``.

  Returns:
    ``{'sharpness': v^T H v / ||v||^2, 'correlation': <g, v> / (||g|| ||v||), 'best_step': <g, v> / v^T H v,
    'model_decrease': <g, v>^2 / (2 v^T H v)}`` (the last two for the direction as given, not normalised; they
    are ``inf`` or negative when ``v^T H v <= 0``: the model has no minimum along ``v``).

  Example:
    >>> import jax.numpy as jnp
    >>> f = lambda w: 0.5 * jnp.sum(jnp.array([1.0, 4.0]) * w ** 2)
    >>> out = local_model(f, jnp.array([1.0, 1.0]), jnp.array([0.0, 1.0]))
    >>> [round(float(out[k]), 6) for k in ('sharpness', 'correlation', 'best_step', 'model_decrease')]
    [4.0, 0.970143, 1.0, 2.0]
  """
  grad = jax.grad(loss_fn)(params, *args)
  hv = hvp(loss_fn, params, direction, *args)
  vhv, gv = optax.tree.vdot(direction, hv), optax.tree.vdot(grad, direction)
  return {'sharpness': vhv / optax.tree.vdot(direction, direction),
          'correlation': gradient_correlation(grad, direction), 'best_step': gv / vhv,
          'model_decrease': gv ** 2 / (2 * vhv)}


def line_search_decrease(loss_fn: Callable[..., jax.Array], params: PyTree, direction: PyTree,
                         steps: Sequence[float], *args: Any) -> tuple[jax.Array, jax.Array]:
  """The exact loss decrease ``f(x) - f(x - eta v)`` over a grid of ``eta``: the largest decrease and its ``eta``.

  Returns:
    ``(best_decrease, best_step)``.
  """
  f0 = loss_fn(params, *args)
  etas = jnp.asarray(steps)
  values = jax.vmap(lambda eta: loss_fn(jax.tree.map(lambda p, v: p - eta * v, params, direction), *args))(etas)
  decrease = f0 - jnp.where(jnp.isfinite(values), values, jnp.inf)
  i = jnp.argmax(decrease)
  return decrease[i], etas[i]
