"""A per-example transform fed a batch's mean gradient: the whole batch as one microbatch.

The private transforms here (``optim.dp_sgd``, ``optim.dice_sgd``) take per-example updates with a leading batch
axis. Training loops that only have the batch's mean gradient (the main job, the conformance suite) can still run
them through :func:`single_microbatch`: the mean gradient becomes a batch of one row. That is TF Privacy's
``num_microbatches=1``: the clipping and the noise bound the contribution of the batch as a whole, which is NOT
per-example differential privacy at the per-example sampling rate. For per-example privacy feed per-example
gradients (``optim.per_example_grads``).
"""

from __future__ import annotations

import functools
from typing import Callable

import jax
import optax


def single_microbatch(tx: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
  """``tx`` with every incoming update tree given a leading axis of size 1 (one microbatch).

  >>> import jax.numpy as jnp
  >>> from optim.privacy.dpsgd import dp_sgd_aggregate
  >>> tx = single_microbatch(dp_sgd_aggregate(1.0, 0.0))
  >>> out, _ = tx.update({'w': jnp.array([3.0, 4.0])}, tx.init({'w': jnp.zeros(2)}))
  >>> out['w'].tolist()
  [0.6000000238418579, 0.800000011920929]
  """
  tx = optax.with_extra_args_support(tx)

  def update_fn(updates, state, params=None, **extra):
    return tx.update(jax.tree.map(lambda u: u[None], updates), state, params, **extra)

  return optax.GradientTransformationExtraArgs(tx.init, update_fn)


def microbatched(factory: Callable[..., optax.GradientTransformation]) -> Callable[..., optax.GradientTransformation]:
  """``factory`` whose transforms are wrapped by :func:`single_microbatch` (same signature, for registries)."""

  @functools.wraps(factory)
  def build(*args, **kwargs):
    return single_microbatch(factory(*args, **kwargs))

  return build
