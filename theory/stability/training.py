"""GD and SGD (a fresh batch without replacement each step) on the square loss, every learning rate at once."""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from theory.numerics import PyTree, float64
from theory.stability.models import MODELS, init_params, square_loss
from theory.stability.second_moment import check_batch_size


@functools.partial(jax.jit, static_argnames=('model', 'batch_size', 'num_steps'))
def _train(model, params, x, y, key, learning_rates, batch_size, num_steps):
  fn = MODELS[model]
  n = x.shape[0]
  loss_fn = lambda p, xb, yb: square_loss(fn, p, xb, yb)

  def run(lr):
    def step(p, t):
      if batch_size == n:
        xb, yb = x, y
      else:
        idx = jnp.argsort(jax.random.uniform(jax.random.fold_in(key, t), (n,)))[:batch_size]
        xb, yb = x[idx], y[idx]
      g = jax.grad(loss_fn)(p, xb, yb)
      return jax.tree.map(lambda a, b: a - lr * b, p, g), None

    p, _ = jax.lax.scan(step, params, jnp.arange(num_steps))
    return p, loss_fn(p, x, y)

  return jax.vmap(run)(learning_rates)


@float64
def train_to_interpolation(model: str, data: dict[str, np.ndarray], learning_rates: Sequence[float],
                           batch_size: int, num_steps: int, seed: int = 0, width: int = 50,
                           init_scale: float = 1.0) -> tuple[PyTree, np.ndarray]:
  """GD (``batch_size = n``) or SGD (fresh batch without replacement each step) on the square loss, for every
  learning rate at once (``vmap``), in float64.

  Args:
    model: ``'diagonal'`` or ``'relu'``.
    data: ``{'x', 'y', ...}``.
    learning_rates: the grid of ``eta``.
    batch_size: ``B``.
    num_steps: steps.
    seed: seed of the initialisation and of the batches.
    width: hidden width (ReLU).
    init_scale: initialisation scale (see :func:`init_params`).

  Returns:
    ``(params, losses)``: parameters stacked over learning rates and the final full-batch losses.
  """
  x, y = jnp.asarray(data['x'], jnp.float64), jnp.asarray(data['y'], jnp.float64)
  check_batch_size(x.shape[0], batch_size)
  params = init_params(model, seed, x.shape[1], width, init_scale)
  params, losses = _train(model, params, x, y, jax.random.key(seed + 1), jnp.asarray(learning_rates, jnp.float64),
                          batch_size, num_steps)
  return params, np.asarray(losses)
