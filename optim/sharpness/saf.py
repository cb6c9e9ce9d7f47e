"""SAF: the trajectory loss against the logits each example had a few epochs ago (arXiv 2205.14083).

Du, Zhou, Feng, Tan & Zhou, "Sharpness-Aware Training for Free", NeurIPS 2022; the authors' ``SAF_train.py``
(AngusDujw/SAF).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from optim.sharpness import trajectory


class SAFState(NamedTuple):
  logits: jax.Array  # (memory_epochs + 1, num_examples, num_classes): slot e % (E + 1) holds epoch e's logits


def saf(num_examples: int, num_classes: int, *, weight: float = 0.3, temperature: float = 5.0,
        memory_epochs: int = 2, start_epoch: int = 5, end_epoch: int = 300,
        dtype=None) -> trajectory.TrajectoryLoss:
  r"""SAF's trajectory loss: a tempered KL from the outputs each example had ``memory_epochs`` epochs ago.

  At epoch :math:`e` with :math:`s < e < e_{end}`, a batch :math:`B` of examples with indices :math:`i` adds

  .. math::

     \lambda\, T^2\, \frac{1}{|B|} \sum_{i \in B}
       \mathrm{KL}\big(\mathrm{softmax}(z^{(e - \tilde E)}_i / T) \,\big\|\, \mathrm{softmax}(f_\theta(x_i) / T)\big)

  to the training loss, where :math:`z^{(e - \tilde E)}_i` are the logits recorded for example :math:`i` during
  epoch :math:`e - \tilde E` (no gradient flows into them). The memory is a ring buffer of
  :math:`\tilde E + 1` epochs: ``update`` writes the step's logits to slot :math:`e \bmod (\tilde E + 1)` and
  ``loss`` reads slot :math:`(e - \tilde E) \bmod (\tilde E + 1)`, as the authors' code does. Cost: no extra
  forward or backward pass, and :math:`(\tilde E + 1) N K` stored numbers.

  Defaults are the authors' ImageNet command (``run.sh``: ``--reinforce 0.3 --minus_epoch 2 --kl_start_epoch 5``,
  temperature 5, ``kl_end_epoch`` 300); ``SAF_train.py``'s own argparse defaults are ``weight=0.16,
  memory_epochs=3``, one argument each away. The :math:`T^2` factor is the code's (the loss as the paper's
  equation prints it may lack it; it only rescales :math:`\lambda`, so ``weight / T**2`` is the other reading).

  Args:
    num_examples: size :math:`N` of the training set (indices run over ``[0, N)``).
    num_classes: number of outputs :math:`K`.
    weight: :math:`\lambda` (the code's ``reinforce``).
    temperature: :math:`T`.
    memory_epochs: :math:`\tilde E \ge 1` (the code's ``minus_epoch``).
    start_epoch: the loss is on for ``start_epoch < epoch < end_epoch``; needs ``start_epoch >= memory_epochs - 1``
      so that the slot read was written (every example is seen once an epoch).
    end_epoch: see ``start_epoch``.
    dtype: dtype of the stored logits (default: JAX's default float, float32 unless x64 is on).

  Returns:
    A :class:`~optim.sharpness.trajectory.TrajectoryLoss`: ``init()``, ``loss(logits, state, *, epoch,
    indices)``, ``update(state, *, epoch, logits, indices)``.

  Example:
    >>> import jax.numpy as jnp
    >>> import optim
    >>> term = optim.saf(num_examples=4, num_classes=3, memory_epochs=1, start_epoch=0)
    >>> state = term.init()
    >>> idx = jnp.array([0, 2])
    >>> state = term.update(state, epoch=0, logits=jnp.array([[1., 0., 0.], [0., 1., 0.]]), indices=idx)
    >>> float(term.loss(jnp.array([[1., 0., 0.], [0., 1., 0.]]), state, epoch=1, indices=idx))  # unchanged outputs
    0.0
  """
  trajectory.check_window('saf', weight, temperature, start_epoch, end_epoch)
  if num_examples < 1 or num_classes < 1:
    raise ValueError(f'saf: num_examples and num_classes must be >= 1, got {num_examples}, {num_classes}')
  if memory_epochs < 1:
    raise ValueError(f'saf: memory_epochs must be >= 1 (with 0 the target is the current output), got '
                     f'{memory_epochs}')
  if start_epoch < memory_epochs - 1:
    raise ValueError(f'saf: start_epoch must be >= memory_epochs - 1 = {memory_epochs - 1}, or the loss reads '
                     f'logits never recorded; got start_epoch={start_epoch}')
  slots = memory_epochs + 1

  def init(params=None):
    del params
    return SAFState(jnp.zeros((slots, num_examples, num_classes), dtype))

  def loss(logits, state, *, epoch, indices, inputs=None):
    del inputs
    past = state.logits[(jnp.asarray(epoch) - memory_epochs) % slots, indices]
    kl = trajectory.tempered_kl(logits, past, temperature)
    return jnp.where(trajectory.active(epoch, start_epoch, end_epoch), weight * kl, jnp.zeros_like(kl))

  def update(state, *, epoch, logits, indices, params=None):
    del params
    logits = jax.lax.stop_gradient(logits).astype(state.logits.dtype)
    return SAFState(state.logits.at[jnp.asarray(epoch) % slots, indices].set(logits))

  return trajectory.TrajectoryLoss(init, loss, update)
