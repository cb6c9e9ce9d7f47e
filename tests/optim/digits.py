"""The convergence check the optimizer tests share: an MLP trained on scikit-learn's bundled 8x8 digits.

``fit(tx)`` trains ``experiments.lib.common.models.MLP`` from a fixed initialisation on fixed batches (the batch
at step t is ``data.batch_indices(n, batch_size, t)``) and returns the final training loss over the whole training
set and the test accuracy. Oracles that a transform needs at ``update`` (Sophia's ``obj_fn`` or ``logits_fn``,
the rolling ball's ``value_and_grad_fn``) come from ``oracles(loss_fn, logits_fn, params, key)`` -- the signature
of ``optim.registry.Entry.oracles``, so ``fit(entry.build(), oracles=entry.oracles)`` trains a registry entry.
"""

from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from experiments.lib.common import data, models


class Fit(NamedTuple):
  train_loss: float     # cross-entropy over the whole training set
  test_accuracy: float


@functools.cache
def digits() -> data.Dataset:
  return data.load_digits()


def fit(tx: optax.GradientTransformation, *, oracles: Callable[..., dict] | None = None, steps: int = 150,
        batch_size: int = 64, hidden: tuple[int, ...] = (32,), seed: int = 0) -> Fit:
  """Trains the digits MLP with ``tx`` for ``steps`` steps; returns the final train loss and test accuracy."""
  ds = digits()
  net = models.MLP(hidden=hidden)
  params = net.init(jax.random.key(seed), ds.x_train[:1])
  state = tx.init(params)

  @jax.jit
  def step(params, state, x, y, key):
    logits_fn = lambda p: net.apply(p, x)
    loss_fn = lambda p: models.cross_entropy(logits_fn(p), y)
    loss, grads = jax.value_and_grad(loss_fn)(params)
    extra = oracles(loss_fn=loss_fn, logits_fn=logits_fn, params=params, key=key) if oracles else {}
    updates, state = tx.update(grads, state, params, **extra)
    return optax.apply_updates(params, updates), state, loss

  for t in range(steps):
    idx = data.batch_indices(len(ds.x_train), batch_size, t, seed)
    key = jax.random.fold_in(jax.random.key(seed), t)
    params, state, _ = step(params, state, ds.x_train[idx], ds.y_train[idx], key)
  loss = float(models.cross_entropy(net.apply(params, ds.x_train), ds.y_train))
  accuracy = float(jnp.mean(jnp.argmax(net.apply(params, ds.x_test), -1) == ds.y_test))
  return Fit(loss, accuracy)
