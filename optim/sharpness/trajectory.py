"""The trajectory loss shared by SAF and MESA: a tempered KL from past outputs, active inside an epoch window.

Du, Zhou, Feng, Tan & Zhou, "Sharpness-Aware Training for Free", NeurIPS 2022, arXiv 2205.14083; the authors'
code is AngusDujw/SAF (``SAF_train.py`` and ``MESA_train.py``, a timm fork).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from optim import checks

PyTree = Any


def tempered_kl(logits: jax.Array, target_logits: jax.Array, temperature: float | jax.Array) -> jax.Array:
  """``T^2 mean_i KL(softmax(z_i / T) || softmax(f_i / T))``, the target ``z`` getting no gradient.

  With ``p = softmax(stop_gradient(z) / T)`` and ``q = softmax(f / T)`` per row ``i``,
  ``KL(p || q) = sum_k p_k (log p_k - log q_k)``: the direction of the authors'
  ``F.kl_div(log q, p, reduction='none').sum(-1).mean() * T**2``, where the past (or EMA) outputs are the
  target. The ``T^2`` keeps the gradient's scale independent of ``T`` (as in distillation).

  Args:
    logits: the current outputs ``f``, shape ``(batch, classes)``.
    target_logits: the past or teacher outputs ``z``, same shape (a stop-gradient is applied here).
    temperature: ``T > 0``.

  Returns:
    A scalar.

  Example:
    >>> import jax.numpy as jnp
    >>> from optim.sharpness.trajectory import tempered_kl
    >>> float(tempered_kl(jnp.zeros((2, 3)), jnp.zeros((2, 3)), 5.0))
    0.0
  """
  target = jax.lax.stop_gradient(target_logits).astype(logits.dtype)
  log_p = jax.nn.log_softmax(target / temperature, axis=-1)
  log_q = jax.nn.log_softmax(logits / temperature, axis=-1)
  kl = jnp.sum(jnp.exp(log_p) * (log_p - log_q), axis=-1)
  return jnp.mean(kl) * temperature ** 2


def active(epoch: int | jax.Array, start_epoch: int, end_epoch: int) -> jax.Array:
  """Whether the trajectory loss is on at ``epoch``: ``start_epoch < epoch < end_epoch`` (strict, as the code)."""
  epoch = jnp.asarray(epoch)
  return (epoch > start_epoch) & (epoch < end_epoch)


class TrajectoryLoss(NamedTuple):
  """A loss term with its own state (SAF's logit memory, MESA's EMA teacher).

  Attributes:
    init: ``init(params) -> state`` (SAF ignores ``params``).
    loss: ``loss(logits, state, *, epoch, indices=None, inputs=None) -> scalar``: ``lambda`` times the tempered
      KL inside the epoch window, ``0`` outside it. SAF reads ``indices`` (the examples' positions in the
      training set), MESA ``inputs`` (to run the teacher).
    update: ``update(state, *, epoch, logits=None, indices=None, params=None) -> state``, called once after each
      training step: SAF stores the step's logits, MESA moves its EMA towards the new parameters.
  """

  init: Callable[..., Any]
  loss: Callable[..., jax.Array]
  update: Callable[..., Any]


def regularize(apply_fn: Callable[[PyTree, jax.Array], jax.Array],
               base_loss: Callable[[jax.Array, jax.Array], jax.Array], term: TrajectoryLoss) -> Callable:
  """The training loss ``base_loss(f(x), y) + term.loss(f(x), ...)`` as one function of the parameters.

  Returns ``loss(params, state, x, y, *, epoch, indices) -> (total, (logits, base))``, ready for
  ``jax.value_and_grad(..., has_aux=True)``; the returned logits are what ``term.update`` stores. One forward and
  one backward pass of the model per step (MESA adds one forward pass of the teacher).

  Example:
    >>> import jax, jax.numpy as jnp, optax
    >>> from optim.sharpness import saf, trajectory
    >>> term = saf.saf(num_examples=4, num_classes=3)
    >>> loss = trajectory.regularize(lambda w, x: x @ w, optax.softmax_cross_entropy_with_integer_labels, term)
    >>> total, (logits, base) = loss(jnp.zeros((2, 3)), term.init(), jnp.ones((4, 2)), jnp.arange(4) % 3,
    ...                              epoch=0, indices=jnp.arange(4))
    >>> bool(total == base)   # epoch 0 is before the window: the base loss alone
    True
  """

  def loss(params, state, x, y, *, epoch, indices=None):
    logits = apply_fn(params, x)
    base = jnp.mean(base_loss(logits, y))
    extra = term.loss(logits, state, epoch=epoch, indices=indices, inputs=x)
    return base + extra, (logits, base)

  return loss


def check_window(name: str, weight, temperature, start_epoch: int, end_epoch: int) -> None:
  """The checks SAF and MESA share, each error naming ``name`` and the argument."""
  checks.non_negative(f'{name}: weight', weight)
  checks.check(f'{name}: temperature', temperature, lambda v: v > 0, 'finite and > 0')
  if start_epoch < 0 or end_epoch <= start_epoch:
    raise ValueError(f'{name}: need 0 <= start_epoch < end_epoch, got start_epoch={start_epoch}, '
                     f'end_epoch={end_epoch}')
