"""Full-batch gradient descent on the MLP's mean cross-entropy, in float64."""

from __future__ import annotations

import functools

import jax
import numpy as np
import jax.numpy as jnp

from theory.hessian.model import cross_entropy
from theory.numerics import PyTree, float64, tree_float64


@functools.partial(jax.jit, static_argnames=('steps',))
def _gd(params, x, y, steps, learning_rate):
  def step(p, _):
    loss, g = jax.value_and_grad(cross_entropy)(p, x, y)
    return jax.tree.map(lambda a, b: a - learning_rate * b, p, g), loss

  return jax.lax.scan(step, params, None, length=steps)


@float64
def train(params: PyTree, x: np.ndarray, y: np.ndarray, steps: int, learning_rate: float
          ) -> tuple[PyTree, np.ndarray]:
  """Full-batch gradient descent on the mean cross-entropy, in float64.

  Args:
    params: initial MLP parameters.
    x: inputs ``(N, d)``.
    y: integer labels ``(N,)``.
    steps: number of GD steps.
    learning_rate: step size.

  Returns:
    ``(params, losses)``: float64 parameters after ``steps`` steps, and the loss before each step.
  """
  params = tree_float64(params)
  params, losses = _gd(params, jnp.asarray(x, jnp.float64), jnp.asarray(y), steps, learning_rate)
  return params, np.asarray(losses)
