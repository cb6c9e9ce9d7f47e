"""Directional sharpness of each optimizer's update along its own training trajectory, with and without
coordinate-wise clipping of that update (Pan & Li, arXiv 2306.00204).

Protocol: every optimizer starts from the same parameters and sees the same batches. At a checkpoint ``x_t`` of
an optimizer's own trajectory, with the update ``u_t`` it is about to apply, the Hessian ``H`` of the loss on a
fixed evaluation batch gives

* the sharpness of the update, ``u^T H u / ||u||^2`` (SGD's ``u`` is the mini-batch gradient, Adam's
  ``m_hat / (sqrt(v_hat) + eps)``, up to the learning rate);
* the sharpness of the clipped update ``clip(u)`` (:func:`optim.coordinate_clip` with ``fraction``: the top
  ``fraction`` of coordinates cut to the next largest magnitude);
* the sharpness of the mini-batch gradient at the same point, the direction plain SGD would take there, and of
  the clipped gradient (clipped SGD's direction there);
* the gradient correlation of each with the evaluation-batch gradient.

The model, the data and the optimizers come in as arguments (``loss_fn(params, batch)``, ``batch_fn(step)``, a
dict of optax transforms), so this works for any model; the experiment passes a character transformer.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optim import coordinate_clip
from theory.directional_sharpness.quantities import gradient_correlation, sharpness_along
from theory.numerics import PyTree, float64, tree_float64


def _probe(loss_fn, clip):
  names = ('update', 'clipped_update', 'gradient', 'clipped_gradient')

  def probe(params, grad, update, eval_batch):
    direction = jax.tree.map(lambda u: -u, update)  # the descent direction, learning rate aside
    clipped, _ = clip.update(direction, clip.init(direction))
    clipped_grad, _ = clip.update(grad, clip.init(grad))
    stacked = jax.tree.map(lambda *v: jnp.stack(v), direction, clipped, grad, clipped_grad)
    # One Hessian-vector product graph, vmapped over the four directions (a quarter of the compile time).
    sharp = jax.vmap(lambda v: sharpness_along(loss_fn, params, v, eval_batch))(stacked)
    full_grad = jax.grad(loss_fn)(params, eval_batch)
    corr = jax.vmap(lambda v: gradient_correlation(full_grad, v))(stacked)
    out = {f'sharpness_{n}': sharp[i] for i, n in enumerate(names)}
    out.update({f'correlation_{n}': corr[i] for i, n in enumerate(names)})
    out['loss'] = loss_fn(params, eval_batch)
    return out

  return jax.jit(probe)


@float64
def sharpness_along_training(loss_fn: Callable[[PyTree, Any], jax.Array], init_params: PyTree,
                             optimizers: Mapping[str, optax.GradientTransformation],
                             batch_fn: Callable[[int], Any], eval_batch: Any, *, steps: int, every: int,
                             clip_fraction: float = 0.01) -> dict[str, dict[str, np.ndarray]]:
  """Trains each optimizer for ``steps`` steps in float64 and probes its update every ``every`` steps.

  Args:
    loss_fn: scalar ``loss_fn(params, batch)``.
    init_params: the common starting point (cast to float64).
    optimizers: name -> optax transform (its update is the step, learning rate included).
    batch_fn: ``batch_fn(step)``, the training batch of a step (the same for every optimizer).
    eval_batch: the fixed batch whose loss Hessian measures the sharpness.
    steps: training steps.
    every: steps between probes (step 0 included).
    clip_fraction: the fraction of coordinates :func:`optim.coordinate_clip` clips.

  Returns:
    name -> ``{'steps', 'loss', 'sharpness_<d>', 'correlation_<d>'}`` arrays over the probes for the
    directions ``<d>`` in ``update, clipped_update, gradient, clipped_gradient``, and ``'train_loss'`` (the
    mini-batch loss at every step).
  """
  clip = coordinate_clip(clip_fraction)
  probe = _probe(loss_fn, clip)
  value_and_grad = jax.jit(jax.value_and_grad(loss_fn))
  eval_batch = jax.tree.map(lambda a: a if np.issubdtype(np.asarray(a).dtype, np.integer) else
                            np.asarray(a, np.float64), eval_batch)
  out = {}
  for name, tx in optimizers.items():
    params = tree_float64(init_params)
    state = tx.init(params)
    update_fn = jax.jit(tx.update)
    rows, train_loss = [], []
    for t in range(steps + 1):
      loss, grad = value_and_grad(params, batch_fn(t))
      updates, new_state = update_fn(grad, state, params)
      if t % every == 0:
        rows.append({'steps': t, **{k: float(v) for k, v in probe(params, grad, updates, eval_batch).items()}})
      if t == steps:
        break
      train_loss.append(float(loss))
      params, state = optax.apply_updates(params, updates), new_state
    out[name] = {k: np.asarray([r[k] for r in rows]) for k in rows[0]}
    out[name]['train_loss'] = np.asarray(train_loss)
  return out
