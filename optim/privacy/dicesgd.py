"""DiceSGD: DP-SGD with clipped error feedback, which removes the constant bias of per-example clipping.

Zhang, Bu, Wu & Hong, "Differentially Private SGD Without Clipping Bias: An Error-Feedback Approach", ICLR 2024,
arXiv 2311.14632, Algorithm 1; official code 564612540/DiceSGD (``PrivacyEngine_Dice``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from optim import checks
from optim.trees import gaussian_like
from optim.privacy import clipping

PyTree = Any
CONVENTIONS = ('paper', 'code')


class DiceSGDState(NamedTuple):
  """The error e_t (hidden: a function of the data that is never privatised), the noise key, the step count."""

  error: PyTree
  key: jax.Array
  count: jax.Array  # int32


def dice_noise_std(l2_norm_clip: float, error_clip: float, noise_multiplier: Any) -> jax.Array:
  """The std of the noise on the SUM scale, ``sigma C1 sqrt(1 + 2 C2 / C1)`` (the official code's calibration)."""
  c1 = jnp.asarray(l2_norm_clip, float)
  sigma = jnp.asarray(noise_multiplier, float)
  return jnp.where(sigma == 0, 0.0, sigma * jnp.sqrt(c1 * c1 + 2.0 * c1 * jnp.asarray(error_clip, float)))


def dice_sgd_aggregate(l2_norm_clip: float, error_clip: float, noise_multiplier: float, seed: int = 0, *,
                       expected_batch_size: int | None = None, convention: str = 'paper'
                       ) -> optax.GradientTransformationExtraArgs:
  """DiceSGD's private direction from per-example updates: clipped mean, clipped error feedback, noise.

  With per-example gradients g_1..g_B (leading batch axis), mask m_i, B the expected batch size, and e_0 = 0
  (Algorithm 1 of arXiv 2311.14632, everything on the mean scale as in the paper)::

      v_t     = (1/B) sum_i m_i clip(g_i, C1) + clip(e_t, C2)
      out_t   = v_t + w_t,          w_t ~ N(0, s^2 I),   s = sigma sqrt(C1^2 + 2 C1 C2) / B
      e_{t+1} = e_t + (1/B) sum_i m_i g_i - v_t   = [e_t - clip(e_t, C2)] + (1/B) sum_i m_i (g_i - clip(g_i, C1))

  and the optimizer after it applies ``theta <- theta - eta out_t`` (:func:`dice_sgd`). Norms are global over all
  leaves (the paper, and fastDP's all-layer clipping in the code). Examples with a non-finite entry are dropped
  from both the clipped and the raw mean (the rule of :mod:`optim.privacy.clipping`).

  Conventions (``convention``):

  - ``'paper'``: the error update above.
  - ``'code'``: the official code's ``e <- e min(a, 1 - min(a, 1)) + (mean g - mean clip g)`` with
    ``a = C2 / (||e|| + 1e-6)``, and feedback ``e min(a, 1)``. It equals the paper while ``||e|| <= 2 C2`` and keeps
    ``clip(e)`` (norm C2) instead of ``e - clip(e)`` once ``||e|| > 2 C2``.

  Noise: the std on the sum, ``sigma C1 sqrt(1 + 2 C2/C1)``, is the official code's (``noise_multiplier *
  max_grad_norm * sqrt(1 + 2 r)``, r = C2/C1 its ``error_max_grad_norm`` ratio), then divided by B like the
  direction. As in the code, sigma is the DP-SGD noise multiplier for the target budget
  (``optim.privacy.noise_multiplier_for``) and the inflation sqrt(1 + 2 C2/C1) pays for the hidden error; the
  paper's RDP theorem (its constant in C1, C2) was not re-derived here. The code works on the sum scale with
  the error clipped at C1 r before dividing by B; here everything is on the paper's mean scale.

  The state holds e_t, which is NOT private: never release the optimizer state (a checkpoint given to an auditor
  counts as a release); only the parameters are covered by the guarantee.

  Args:
    l2_norm_clip: C1 > 0, the per-example clip.
    error_clip: C2 >= C1 (the paper's requirement), the clip of the fed-back error.
    noise_multiplier: sigma >= 0.
    seed: the noise of step t is drawn from ``fold_in(key(seed), t)``.
    expected_batch_size: B; by default the number of rows (fixed-size batches); required with a mask.
    convention: ``'paper'`` or ``'code'`` (the error update).

  Returns:
    A ``GradientTransformationExtraArgs``; ``update(per_example_updates, state, params=None, *, mask=None)``.
  """
  clipping.check_clip(l2_norm_clip, 'dice_sgd')
  clipping.check_clip(error_clip, 'dice_sgd: error_clip')
  checks.non_negative('dice_sgd: noise_multiplier', noise_multiplier)
  checks.one_of('dice_sgd: convention', convention, CONVENTIONS)
  if clipping.is_per_layer(l2_norm_clip):
    raise ValueError('dice_sgd: l2_norm_clip must be one number (DiceSGD clips with a global norm)')
  if all(checks.is_concrete(c) for c in (l2_norm_clip, error_clip)) and float(error_clip) < float(l2_norm_clip):
    raise ValueError(f'dice_sgd: error_clip (C2={error_clip}) must be >= l2_norm_clip (C1={l2_norm_clip})')

  def init_fn(params):
    error = jax.tree.map(lambda p: jnp.zeros(jnp.shape(p), clipping.compute_dtype(jnp.asarray(p))), params)
    return DiceSGDState(error, jax.random.key(seed), jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None, *, mask=None, **extra):
    del params, extra
    rows = clipping.batch_size(updates)
    one = jax.tree.map(lambda x: x[0], updates)
    checks.same_structure(one, state.error, 'dice_sgd per-example updates')
    if mask is not None and expected_batch_size is None:
      raise ValueError('dice_sgd: a mask (Poisson batches) needs expected_batch_size')
    b = rows if expected_batch_size is None else expected_batch_size
    scales = clipping.row_scales(updates, l2_norm_clip, mask)
    clipped_mean = jax.tree.map(lambda s: s / b, clipping.clipped_sum(updates, l2_norm_clip, mask))
    raw_mean = jax.tree.map(lambda s: s / b, clipping.kept_sum(updates, scales.keep))
    e = state.error
    if convention == 'paper':
      feedback = clipping.clip_tree(e, error_clip)
      kept_error = jax.tree.map(lambda x, f: x - f, e, feedback)
    else:
      a = error_clip / (_norm(e) + 1e-6)
      feedback = jax.tree.map(lambda x: x * jnp.minimum(a, 1.0), e)
      kept_error = jax.tree.map(lambda x: x * jnp.minimum(a, 1.0 - jnp.minimum(a, 1.0)), e)
    direction = jax.tree.map(lambda c, f: c + f, clipped_mean, feedback)
    new_error = jax.tree.map(lambda k, r, c: k + (r - c), kept_error, raw_mean, clipped_mean)
    std = dice_noise_std(l2_norm_clip, error_clip, noise_multiplier) / b
    noise = gaussian_like(jax.random.fold_in(state.key, state.count), direction)
    out = jax.tree.map(lambda d, z, x: (d + std.astype(z.dtype) * z).astype(x.dtype), direction, noise, one)
    return out, DiceSGDState(new_error, state.key, optax.safe_increment(state.count))

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _norm(tree: PyTree) -> jax.Array:
  return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


def dice_sgd(learning_rate: optax.ScalarOrSchedule, l2_norm_clip: float, error_clip: float,
             noise_multiplier: float, seed: int = 0, *, expected_batch_size: int | None = None,
             convention: str = 'paper', momentum: float | None = None) -> optax.GradientTransformationExtraArgs:
  """DiceSGD: :func:`dice_sgd_aggregate` then ``optax.sgd(learning_rate, momentum)``.

  ``theta_{t+1} = theta_t - eta (v_t + w_t)`` with v_t, w_t and the error update of :func:`dice_sgd_aggregate`
  (arXiv 2311.14632, Algorithm 1; ``convention='code'`` for the official code's error update). The official
  training script divides its learning rate by C1 (``lr_true = lr / C``); pass the learning rate you mean. Chain
  ``dice_sgd_aggregate`` with ``optax.adam`` for the code's Adam variant.

  Example:
    >>> import jax.numpy as jnp
    >>> tx = dice_sgd(0.1, l2_norm_clip=0.5, error_clip=0.5, noise_multiplier=0.0)
    >>> w = jnp.zeros(2)
    >>> state = tx.init(w)
    >>> u, state = tx.update(jnp.array([[3.0, 4.0], [0.0, 0.2]]), state, w)
    >>> [round(v, 4) for v in u.tolist()]  # -0.1 * ((0.3, 0.4) + (0, 0.2)) / 2
    [-0.015, -0.03]
    >>> [round(v, 4) for v in state[0].error.tolist()]  # the clipping error, ((3, 4) - (0.3, 0.4)) / 2
    [1.35, 1.8]
  """
  checks.learning_rate(learning_rate, 'dice_sgd: learning_rate')
  return optax.chain(
      dice_sgd_aggregate(l2_norm_clip, error_clip, noise_multiplier, seed, expected_batch_size=expected_batch_size,
                         convention=convention),
      optax.sgd(learning_rate, momentum=momentum))

