"""MESA: the trajectory loss against an EMA of the parameters as teacher (arXiv 2205.14083, section 4).

Du, Zhou, Feng, Tan & Zhou, "Sharpness-Aware Training for Free", NeurIPS 2022; the authors' ``MESA_train.py``
(AngusDujw/SAF), whose teacher is timm's ``ModelEmaV2``.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from optim import checks
from optim.sharpness import trajectory

PyTree = Any


class MESAState(NamedTuple):
  ema: optax.EmaState  # the teacher's parameters, ema.ema


def mesa(apply_fn: Callable[[PyTree, jax.Array], jax.Array], *, weight: float = 0.8, temperature: float = 5.0,
         decay: float = 0.9998, start_epoch: int = 5, end_epoch: int = 300) -> trajectory.TrajectoryLoss:
  r"""MESA's loss term: a tempered KL from the outputs of an exponential moving average of the parameters.

  With the teacher :math:`\bar\theta_t = \beta \bar\theta_{t-1} + (1 - \beta) \theta_t` (updated after every
  optimizer step, starting from :math:`\bar\theta_0 = \theta_0`), a batch adds, for
  ``start_epoch < epoch < end_epoch``,

  .. math::

     \lambda\, T^2\, \frac{1}{|B|} \sum_{i \in B}
       \mathrm{KL}\big(\mathrm{softmax}(f_{\bar\theta}(x_i) / T) \,\big\|\, \mathrm{softmax}(f_\theta(x_i) / T)\big)

  (no gradient flows into the teacher). Cost: one extra forward pass of the teacher per step and one copy of
  the parameters, instead of SAF's logit memory.

  The EMA is ``optax.ema(decay, debias=False)`` with its accumulator started at the initial parameters, which is
  timm's ``ModelEmaV2`` (a copy of the model, then ``ema = decay * ema + (1 - decay) * params``); ``optax.ema``'s
  own start (zeros, with ``debias=True``) would weight only the parameters seen since step 1. Defaults: the
  authors' ImageNet command (``run.sh``: ``--reinforce 0.8``, temperature 5, ``--kl_start_epoch 5``, EMA decay
  0.9998 a step); ``MESA_train.py``'s own defaults are ``weight=0.3, end_epoch=360``. A decay of 0.9998 averages
  over ~5000 steps: on a run of a few hundred steps choose a smaller one.

  Args:
    apply_fn: ``apply_fn(params, inputs) -> logits``, the model (run on the teacher's parameters).
    weight: :math:`\lambda` (the code's ``reinforce``).
    temperature: :math:`T`.
    decay: :math:`\beta`, the EMA decay per step.
    start_epoch: the loss is on for ``start_epoch < epoch < end_epoch``.
    end_epoch: see ``start_epoch``.

  Returns:
    A :class:`~optim.sharpness.trajectory.TrajectoryLoss`: ``init(params)``, ``loss(logits, state, *, epoch,
    inputs)``, ``update(state, *, params)``; :func:`teacher` reads the EMA parameters from the state.

  Example:
    >>> import jax.numpy as jnp
    >>> import optim
    >>> term = optim.mesa(lambda w, x: x @ w, decay=0.5, start_epoch=0)
    >>> state = term.init(jnp.zeros((2, 3)))
    >>> state = term.update(state, epoch=0, params=jnp.ones((2, 3)))
    >>> optim.sharpness.mesa.teacher(state).tolist()   # 0.5 * 0 + 0.5 * 1
    [[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]
  """
  trajectory.check_window('mesa', weight, temperature, start_epoch, end_epoch)
  checks.decay_rate('mesa: decay', decay)
  ema = optax.ema(decay, debias=False)

  def init(params):
    return MESAState(optax.EmaState(count=jnp.zeros([], jnp.int32), ema=jax.tree.map(jnp.asarray, params)))

  def loss(logits, state, *, epoch, inputs, indices=None):
    del indices
    kl = trajectory.tempered_kl(logits, apply_fn(teacher(state), inputs), temperature)
    return jnp.where(trajectory.active(epoch, start_epoch, end_epoch), weight * kl, jnp.zeros_like(kl))

  def update(state, *, params, epoch=None, logits=None, indices=None):
    del epoch, logits, indices
    checks.same_structure(params, state.ema.ema, 'mesa')
    _, new = ema.update(jax.lax.stop_gradient(params), state.ema)
    return MESAState(new)

  return trajectory.TrajectoryLoss(init, loss, update)


def teacher(state: MESAState) -> PyTree:
  """The teacher's parameters (the EMA) held in a MESA state."""
  return state.ema.ema
