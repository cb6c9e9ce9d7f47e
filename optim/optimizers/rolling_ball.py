"""Rolling Ball Optimizer: a ball of radius rho rolls on the graph of the loss; its contact point is the iterate.

Belgoumri, Bouadjenek, Hacid, Razzak & Aryal, "Rolling Ball Optimizer: Learning by ironing out loss landscape
wrinkles", arXiv 2505.19527; the authors' JAX code (mohammedbelgoumri/milestone-d2.5-followup,
``utilities/optim.py::ball_trajectory`` and ``utilities/spatial.py::project_on_graph``).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from optim import checks

PyTree = Any


def _sq_norm(tree: PyTree, dtype) -> jax.Array:
  return sum(jnp.sum(jnp.square(x.astype(dtype))) for x in jax.tree.leaves(tree))


def project_on_graph(value_and_grad_fn: Callable[[PyTree], tuple[jax.Array, PyTree]], point_x: PyTree,
                     point_y: jax.Array, x0: PyTree, step_size: float, num_steps: int) -> PyTree:
  """Foot point of ``(point_x, point_y)`` on the graph of ``L``, by gradient descent from ``x0``.

  Minimises ``D(x) = (||x - point_x||^2 + (L(x) - point_y)^2) / 2`` with ``num_steps`` steps
  ``x <- x - step_size * ((x - point_x) + (L(x) - point_y) grad L(x))``, as the authors' ``project_on_graph``
  (``optax.sgd`` from the seed ``x0``). One ``value_and_grad_fn`` call per step.

  Args:
    value_and_grad_fn: ``x -> (L(x), grad L(x))``.
    point_x: the point's parameter coordinates (a pytree like ``x0``).
    point_y: its loss coordinate (scalar).
    x0: starting point.
    step_size: gradient-descent step on ``D``.
    num_steps: number of steps (a traced count becomes a ``while_loop``).

  Returns:
    The approximate foot point, a pytree like ``x0``.
  """

  def body(_, x):
    fx, gx = value_and_grad_fn(x)
    dy = fx - point_y
    return jax.tree.map(lambda xi, pi, gi: (xi - step_size * ((xi - pi) + dy * gi)).astype(xi.dtype),
                        x, point_x, gx)

  return jax.lax.fori_loop(0, num_steps, body, x0)


class ScaleByRollingBallState(NamedTuple):
  count: jax.Array  # int32, for learning-rate schedules


def scale_by_rolling_ball(learning_rate: optax.ScalarOrSchedule, radius: float = 0.5,
                          projection_step_size: float = 0.01, num_projection_steps: int = 10
                          ) -> optax.GradientTransformationExtraArgs:
  """The Rolling Ball Optimizer's move, returned as the direction ``(theta - theta') / eta``.

  With ``g = grad L(theta)`` (the incoming updates) and the unit upward normal ``n = (-g, 1) / sqrt(|g|^2 + 1)``
  of the graph of ``L`` in ``R^{d+1}``, one step is::

      c  = (theta, L(theta)) + rho n                 # the ball's centre, resting on the graph
      c' = c - eta (g, |g|^2)                        # moved along the graph's steepest-descent tangent
      theta' = foot point of c' on the graph         # project_on_graph, seeded at theta

  so that ``theta - eta * direction = theta'``. On a linear loss the foot point is ``theta - eta g`` for every
  radius; as ``rho -> 0`` (and the projection converges) the step is gradient descent up to ``O(eta^2)``.

  Args:
    learning_rate: ``eta`` (or schedule), the distance the centre rolls per unit gradient.
    radius: ``rho >= 0``.
    projection_step_size: step of the projection's gradient descent.
    num_projection_steps: its number of steps ``K`` (each one ``value_and_grad_fn`` call).

  Returns:
    A ``GradientTransformationExtraArgs`` whose ``update`` needs ``params`` and
    ``value_and_grad_fn=`` (params -> (loss, grads) on the *current* batch).
  """
  with checks.owner('scale_by_rolling_ball'):
    checks.non_negative('radius', radius)
    checks.check('projection_step_size', projection_step_size, lambda v: v > 0, 'finite and > 0')
    checks.check('num_projection_steps', num_projection_steps, lambda v: v >= 1 and v == int(v), 'an integer >= 1')
    checks.learning_rate(learning_rate)

  def init_fn(params):
    del params
    return ScaleByRollingBallState(jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None, value_and_grad_fn=None, **unused):
    del unused
    if params is None or value_and_grad_fn is None:
      raise ValueError('rolling_ball needs params and value_and_grad_fn=(params -> (loss, grads))')
    checks.same_structure(updates, params, 'rolling_ball')
    eta = learning_rate(state.count) if callable(learning_rate) else learning_rate
    # Only the value is used: under jit the gradient half of this call is dead code.
    value = value_and_grad_fn(params)[0]
    dtype = jnp.result_type(value, jnp.float32, *jax.tree.leaves(params))
    g2 = _sq_norm(updates, dtype)
    inv_norm = jax.lax.rsqrt(g2 + 1)
    # c' = (theta - (rho / s + eta) g,  L(theta) + rho / s - eta |g|^2),  s = sqrt(|g|^2 + 1).
    shift = radius * inv_norm + eta
    target_x = jax.tree.map(lambda p, g: p - (shift * g.astype(dtype)).astype(p.dtype), params, updates)
    target_y = value.astype(dtype) + radius * inv_norm - eta * g2
    foot = project_on_graph(value_and_grad_fn, target_x, target_y, params, projection_step_size,
                            num_projection_steps)
    safe_eta = jnp.where(eta > 0, eta, 1)
    direction = jax.tree.map(
        lambda p, x, g: jnp.where(eta > 0, (p.astype(dtype) - x.astype(dtype)) / safe_eta, 0).astype(g.dtype),
        params, foot, updates)
    return direction, ScaleByRollingBallState(optax.safe_increment(state.count))

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def rolling_ball(learning_rate: optax.ScalarOrSchedule, radius: float = 0.5, projection_step_size: float = 0.01,
                 num_projection_steps: int = 10) -> optax.GradientTransformationExtraArgs:
  """The Rolling Ball Optimizer (RBO): gradient descent for a rigid ball of radius ``rho`` on the loss graph.

  ``theta <- foot point on graph(L) of (theta, L(theta)) + rho n - eta (g, |g|^2)``, see
  :func:`scale_by_rolling_ball`; ``update`` takes ``value_and_grad_fn=`` and costs ``K + 1`` loss evaluations
  (``K`` gradients) on the same batch.

  Conventions: the authors' JAX ``ball_trajectory`` (normal ``(-g, 1)/sqrt(|g|^2+1)``, projection by ``K``
  plain gradient steps seeded at ``theta``), not their 1-D NumPy helper ``rolling_ball_trajectory``, whose
  normal ``(1, -g)`` and seed at the centre are inconsistent with it. Defaults are theirs (rho 0.5, eta 0.1,
  projection step 0.01, K = 10); with so few, so small projection steps the iterate moves only part of the way
  to the foot point, so larger ``projection_step_size`` (about ``1 / (1 + |g|^2)``) is closer to the paper's
  exact projection. ``theta - eta * direction`` is returned exactly, so ``learning_rate`` also scales the step
  as in ``optax.scale_by_learning_rate``.

  Args:
    learning_rate: ``eta`` (or schedule).
    radius: ``rho``.
    projection_step_size: step of the projection's gradient descent.
    num_projection_steps: ``K``.

  Returns:
    A ``GradientTransformationExtraArgs``.

  Example:
    >>> import jax, jax.numpy as jnp, optax
    >>> from optim import rolling_ball
    >>> loss = lambda p: jnp.sum((p - 1.0) ** 2)
    >>> params = jnp.zeros(3)
    >>> tx = rolling_ball(0.1, radius=0.1, projection_step_size=0.2, num_projection_steps=20)
    >>> step = jax.jit(lambda p, s: tx.update(jax.grad(loss)(p), s, p, value_and_grad_fn=jax.value_and_grad(loss)))
    >>> state = tx.init(params)
    >>> for _ in range(30):
    ...   updates, state = step(params, state)
    ...   params = optax.apply_updates(params, updates)
    >>> bool(loss(params) < 1e-3)
    True

  arXiv 2505.19527.
  """
  return optax.chain(
      scale_by_rolling_ball(learning_rate, radius, projection_step_size, num_projection_steps),
      optax.scale_by_learning_rate(learning_rate))


def value_and_grad_oracle(loss_fn, params=None, key=None, logits_fn=None):
  del params, key, logits_fn
  return {'value_and_grad_fn': jax.value_and_grad(loss_fn)}
