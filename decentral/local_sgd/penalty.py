"""EDiT: local SGD whose pseudo-gradients pass a penalty (anomaly elimination, norm weighting, clipping).

EDiT (arXiv 2412.07210) is local SGD with an outer Nesterov optimizer whose reduction of the pseudo-gradients
Delta_i (one per worker, per layer) is guarded by three steps, per layer (here: per leaf):

1. **anomaly elimination**: each worker keeps an exponentially weighted mean and variance of its own
   ||Delta_i||; once warmed up, a norm with z = (||Delta_i|| - mean) / std > threshold * max(1, std of the
   recent z-scores) is an anomaly: that worker's Delta_i is zeroed and its norm raised by 1e6 for step 2;
2. **norm-weighted averaging**: Delta = sum_i w_i Delta_i with w = softmax(-||Delta||_i / T) over workers;
3. **clipping**: Delta <- Delta min(1, phi / (||Delta|| + 1e-6)).

If every worker's pseudo-gradient of a layer was rejected, that layer skips its outer step. Then
anchor <- OuterOpt(anchor, Delta) (Nesterov SGD, lr 0.7, momentum 0.8 in the authors' example).

- :func:`edit` is the synchronous method, an optax transform built on :func:`decentral.local_sgd.local_sgd`.
- :func:`decentral.local_sgd.run_a_edit` (:mod:`decentral.local_sgd.async_edit`) is A-EDiT, the asynchronous
  method with the same penalty.

Conventions from the authors' atorch code (``atorch/local_sgd``): the EWMA starts at mean 0 (not at the first
value), the z-score window holds the last ``warmup`` z-scores, an anomalous norm does not update the detector
(the DDP averager; the FSDP one updates it anyway: ``update_on_anomaly=True``), and the step weight of a worker
is its total step count over the sum of all workers' (atorch's ``global_step / all_reduce(global_step)``).

>>> import jax, jax.numpy as jnp, optax
>>> from decentral import axis
>>> tx = edit(optax.sgd(0.1), sync_every=2, axis_name='workers', clip=None)
>>> def run(p, g):
...   s = tx.init(p)
...   for _ in range(2):
...     u, s = tx.update(g, s, p)
...     p = optax.apply_updates(p, u)
...   return p
>>> p = axis.run(run, 2)(jnp.zeros((2, 1)), jnp.array([[1.0], [3.0]]))
>>> # Delta_i = 0.2 g_i; w = softmax(-0.2, -0.6) = (0.599, 0.401); Delta = 0.3605; -0.7 (1 + 0.8) Delta
>>> [round(float(v), 4) for v in p[:, 0]]
[-0.4543, -0.4543]
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from decentral import axis, checks
from decentral.local_sgd.core import Reducer, accumulation_dtype, default_outer, local_sgd
from optim.checks import owner, qualified

PyTree = Any
ANOMALY_NORM_PENALTY = 1e6  # added to a rejected worker's norm, so its softmax weight is exp(-1e6 / T) = 0
EDIT_OUTER_MOMENTUM = 0.8  # the authors' example (Nesterov SGD, lr 0.7); DiLoCo's default is 0.9


# ---------------------------------------------------------------------------------------------- the EWMA z-test


class EWMAState(NamedTuple):
  """Online anomaly detectors, one per leaf (arrays with a leading axis of the number of leaves)."""

  mean: jax.Array    # (L,) float32, exponentially weighted mean of the norms
  m2: jax.Array      # (L,) float32, exponentially weighted variance
  count: jax.Array   # (L,) int32, number of updates
  window: jax.Array  # (L, W) float32, the last W = warmup z-scores (ring buffer)


def ewma_init(num: int, warmup: int) -> EWMAState:
  """``num`` fresh detectors with a z-score window of ``warmup`` entries."""
  z = jnp.zeros((num,), jnp.float32)
  return EWMAState(z, z, jnp.zeros((num,), jnp.int32), jnp.zeros((num, warmup), jnp.float32))


def ewma_z_score(state: EWMAState, value: jax.Array, warmup: int) -> jax.Array:
  """(value - mean) / std, or 0 before ``warmup`` updates or while std = 0 (atorch's ``get_z_score``)."""
  std = jnp.where(state.count >= 2, jnp.sqrt(state.m2), 0.0)
  ok = (std > 0) & (state.count >= warmup)
  return jnp.where(ok, (value - state.mean) / jnp.where(ok, std, 1.0), 0.0)


def ewma_is_outlier(state: EWMAState, value: jax.Array, *, warmup: int, threshold: float) -> jax.Array:
  """z > threshold * max(1, std of the window of recent z-scores), never during the first ``warmup`` updates."""
  window_std = jnp.std(state.window, axis=-1, ddof=1)
  factor = jnp.maximum(1.0, window_std)
  return (state.count >= warmup) & (ewma_z_score(state, value, warmup) > threshold * factor)


def ewma_update(state: EWMAState, value: jax.Array, *, alpha: float, warmup: int,
                where: jax.Array | bool = True) -> EWMAState:
  """One EWMA step: mean += alpha delta; m2 = (1 - alpha)(m2 + alpha delta delta'); append z; only ``where``."""
  count = state.count + 1
  delta = value - state.mean
  mean = state.mean + alpha * delta
  m2 = (1.0 - alpha) * (state.m2 + alpha * delta * (value - mean))
  z = ewma_z_score(EWMAState(mean, m2, count, state.window), value, warmup)
  slot = (count - 1) % state.window.shape[-1]
  window = jnp.where(jnp.arange(state.window.shape[-1]) == slot[..., None], z[..., None], state.window)
  new = EWMAState(mean, m2, count, window)
  take = jnp.broadcast_to(jnp.asarray(where), count.shape)
  return EWMAState(*(jnp.where(take.reshape(take.shape + (1,) * (a.ndim - take.ndim)), a, b)
                     for a, b in zip(new, state)))


# ---------------------------------------------------------------------------------------------- the penalty


class PenaltyConfig(NamedTuple):
  """Hyperparameters of the pseudo-gradient penalty (None disables a step)."""

  clip: float | None = 10.0             # phi; atorch's README suggests 1 or 10
  temperature: float | None = 1.0       # T of the norm softmax; None: plain mean
  anomaly: bool = True
  ewma_alpha: float = 0.02
  warmup: int = 120
  threshold: float = 3.0
  update_on_anomaly: bool = False


def check_config(cfg: PenaltyConfig) -> PenaltyConfig:
  """``cfg`` after checking every hyperparameter (``ValueError`` naming the first bad one)."""
  for name in ('clip', 'temperature'):
    if getattr(cfg, name) is not None:
      checks.positive_finite(getattr(cfg, name), name)
  checks.fraction(cfg.ewma_alpha, 'ewma_alpha')
  if not checks.is_int(cfg.warmup) or cfg.warmup < 2:
    raise ValueError(f'{qualified("warmup")} must be an integer >= 2 (the z-score window needs two entries), '
                     f'got {cfg.warmup!r}')
  checks.positive_finite(cfg.threshold, 'threshold')
  return cfg


def penalized_reduce(delta: PyTree, detectors: EWMAState, cfg: PenaltyConfig, axis_name: str | None, *,
                     step_weight: jax.Array | None = None, step_weight_ratio: float = 0.0):
  """EDiT's reduction of this worker's float32 pseudo-gradient ``delta`` across ``axis_name``, leaf by leaf.

  Args:
    delta: this worker's pseudo-gradient (float32 pytree).
    detectors: its :class:`EWMAState` (one detector per leaf).
    cfg: the :class:`PenaltyConfig`.
    axis_name: the worker axis (None: one worker).
    step_weight: A-EDiT's weight of this worker (its share of all steps); None for EDiT.
    step_weight_ratio: r, the mix w = (1 - r) w_norm + r w_step (with T set) as in atorch.

  Returns:
    (reduced pseudo-gradient, new detectors, keep: one bool per leaf, whether anyone was accepted,
    rejected: one bool per leaf, whether this worker was rejected).
  """
  leaves, treedef = jax.tree.flatten(delta)
  norms = jnp.stack([jnp.linalg.norm(x.reshape(-1)) for x in leaves])
  rejected = jnp.zeros(norms.shape, bool)
  if cfg.anomaly:
    rejected = ewma_is_outlier(detectors, norms, warmup=cfg.warmup, threshold=cfg.threshold)
    detectors = ewma_update(detectors, norms, alpha=cfg.ewma_alpha, warmup=cfg.warmup,
                            where=True if cfg.update_on_anomaly else ~rejected)
    leaves = [jnp.where(r, 0.0, x) for x, r in zip(leaves, rejected)]
  n = 1 if axis_name is None else axis.axis_size(axis_name)
  if cfg.temperature is not None:
    penalised = norms + ANOMALY_NORM_PENALTY * rejected
    everyone = penalised[None] if axis_name is None else lax.all_gather(penalised, axis_name)
    weights = jax.nn.softmax(-everyone / cfg.temperature, axis=0)
    me = weights[0] if axis_name is None else weights[lax.axis_index(axis_name)]
    if step_weight is not None:
      me = (1.0 - step_weight_ratio) * me + step_weight_ratio * step_weight
  elif step_weight is not None:
    me = jnp.full(norms.shape, step_weight)
  else:
    me = jnp.full(norms.shape, 1.0 / n)
  reduced = [x * w for x, w in zip(leaves, me)]
  reduced = reduced if axis_name is None else lax.psum(reduced, axis_name)
  if cfg.clip is not None:
    reduced = [x * jnp.minimum(1.0, cfg.clip / (jnp.linalg.norm(x.reshape(-1)) + 1e-6)) for x in reduced]
  keep = [jnp.sum(jnp.abs(x)) >= 1e-6 if cfg.anomaly else jnp.asarray(True) for x in reduced]
  return jax.tree.unflatten(treedef, reduced), detectors, keep, rejected


def penalty_bytes(params: PyTree, cfg: PenaltyConfig) -> int:
  """Bytes one worker sends per EDiT sync: the dense pseudo-gradient (float32, or float64 for float64
  parameters), plus its per-leaf norms (float32) when the softmax weights need them (one number per leaf)."""
  leaves = jax.tree.leaves(params)
  dense = sum(int(np.prod(np.shape(x), dtype=np.int64)) * np.dtype(accumulation_dtype(x)).itemsize for x in leaves)
  return dense + (4 * len(leaves) if cfg.temperature is not None else 0)


def penalty_reducer(cfg: PenaltyConfig) -> Reducer:
  """:func:`penalized_reduce` as a :class:`decentral.local_sgd.Reducer` (state: the detectors)."""
  cfg = check_config(cfg)

  def init(params):
    return ewma_init(len(jax.tree.leaves(params)), cfg.warmup)

  def apply(delta, detectors, key, axis_name):
    del key
    reduced, detectors, keep, _ = penalized_reduce(delta, detectors, cfg, axis_name)
    return reduced, detectors, penalty_bytes(delta, cfg), keep

  return Reducer(init, apply, lambda params: penalty_bytes(params, cfg))


def edit(inner: optax.GradientTransformation, outer: optax.GradientTransformation | None = None, *,
         sync_every: int, axis_name: str | None = 'workers', clip: float | None = 10.0,
         temperature: float | None = 1.0, anomaly: bool = True, ewma_alpha: float = 0.02, warmup: int = 120,
         threshold: float = 3.0, update_on_anomaly: bool = False) -> optax.GradientTransformation:
  """EDiT: local SGD whose pseudo-gradients go through anomaly elimination, norm weighting and clipping.

  Every H steps, per leaf l: Delta_{i,l} = anchor_l - theta_{i,l}; rejected by the EWMA z-test -> 0;
  ``Delta_l = sum_i softmax_i(-||Delta_{i,l}|| / T) Delta_{i,l}``; ``Delta_l *= min(1, phi / ||Delta_l||)``;
  anchor_l <- OuterOpt(anchor_l, Delta_l) unless every worker was rejected on l.

  Args:
    inner: the inner optimizer.
    outer: the outer optimizer (per leaf state, as PyTorch's); when None, Nesterov SGD with lr 0.7 and momentum
      :data:`EDIT_OUTER_MOMENTUM` = 0.8 (:func:`decentral.local_sgd.default_outer` with the authors' momentum).
    sync_every: H (atorch's ``local_sgd_sync_interval``).
    axis_name: the worker axis (None: one worker).
    clip: phi, the pseudo-gradient norm threshold (None: no clipping).
    temperature: T of the norm softmax (None: plain mean).
    anomaly: whether to run the z-test.
    ewma_alpha, warmup, threshold: the detector (0.02, 120, 3 as in atorch).
    update_on_anomaly: also feed rejected norms to the detector (atorch's FSDP path).

  Returns:
    A ``GradientTransformation`` (state :class:`decentral.local_sgd.LocalSGDState`, whose
    ``reducer_state`` is the :class:`EWMAState`).

  Reference: Cheng et al., EDiT, arXiv 2412.07210; the penalty as in atorch's ``_sync_sharded_params`` and
  ``OnlineDynamicEWMA``. EDiT's layer-wise sync during the forward pass is a schedule (overlap) with the same
  arithmetic as syncing every layer after step H, which is what this computes.
  """
  cfg = PenaltyConfig(clip, temperature, anomaly, ewma_alpha, warmup, threshold, update_on_anomaly)
  outer = outer or default_outer(momentum=EDIT_OUTER_MOMENTUM)
  with owner('edit'):
    return local_sgd(inner, outer, sync_every=sync_every, reducer=penalty_reducer(cfg), axis_name=axis_name,
                     leafwise_outer=True)
