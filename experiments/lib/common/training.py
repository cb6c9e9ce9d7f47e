"""The supervised training step shared by the main job, the training script, the tests and the notebooks.

Deterministic by construction: the batch at step t is ``data.batch_indices(n, batch, t, seed)`` and the oracle
key is ``fold_in(key(seed), t)``, so a run resumed at step k reproduces an uninterrupted one bit for bit.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from experiments.lib.common import data as data_lib
from experiments.lib.common import models, usage
from optim import registry


class Problem(NamedTuple):
  dataset: data_lib.Dataset
  model: Any
  params: Any


def make_problem(data_dir: str | None = None, model: str = 'mlp', seed: int = 0, **model_kwargs) -> Problem:
  """Digits (embedded) or MNIST from ``data_dir``, a flax model and its initial parameters."""
  usage.check_data_dir({'data_dir': data_dir})
  ds = data_lib.load_images(data_dir, seed)
  net = models.make(model, num_classes=ds.num_classes, **model_kwargs)
  params = net.init(jax.random.key(seed), ds.x_train[:1])
  return Problem(ds, net, params)


def make_step(model, entry: registry.Entry, tx: optax.GradientTransformation) -> Callable:
  """The jitted step ``(params, opt_state, x, y, key) -> (params, opt_state, loss)`` for a registry entry."""

  def loss_fn(params, x, y):
    return models.cross_entropy(model.apply(params, x), y)

  def step(params, opt_state, x, y, key):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    extra = entry.oracles(loss_fn=lambda p: loss_fn(p, x, y), params=params, key=key,
                          logits_fn=lambda p: model.apply(p, x))
    updates, opt_state = tx.update(grads, opt_state, params, **extra)
    return optax.apply_updates(params, updates), opt_state, loss

  return jax.jit(step, donate_argnums=(0, 1))


def accuracy(model, params, x, y, batch: int = 2048) -> float:
  apply = jax.jit(model.apply)
  correct = sum(int(jnp.sum(jnp.argmax(apply(params, x[i:i + batch]), -1) == y[i:i + batch]))
                for i in range(0, len(x), batch))
  return correct / len(x)


def full_loss(model, params, x, y, batch: int = 2048) -> float:
  """The mean cross-entropy over all of ``(x, y)`` (the full-batch loss), in chunks of ``batch`` examples."""
  loss = jax.jit(lambda p, xb, yb: models.cross_entropy(model.apply(p, xb), yb) * len(yb))
  return float(sum(loss(params, x[i:i + batch], y[i:i + batch]) for i in range(0, len(x), batch)) / len(x))


def batch(ds: data_lib.Dataset, batch_size: int, step: int, seed: int):
  idx = data_lib.batch_indices(len(ds.x_train), batch_size, step, seed)
  return ds.x_train[idx], ds.y_train[idx]


def oracle_key(seed: int, step: int) -> jax.Array:
  return jax.random.fold_in(jax.random.key(seed), step)
