"""Iterate averaging as optax transforms: uniform tail average / SWA, EMA of the parameters, second moments.

Each transform passes the updates through unchanged and keeps, in its state, an average of the iterates
``theta_t = params + updates`` that the chain produces; chain it *last* so that ``updates`` is the final step::

    tx = optax.chain(optim.sgld(1e-2, beta=10.0), optim.tail_average(start=100))
    ...
    theta_bar = optim.averaged_params(opt_state)

* :func:`tail_average`: ``theta_bar = (1/K) sum_{t in S} theta_t`` over ``S = {t > start : (t - start) %
  every == 0}``; ``every = 1`` is the uniform tail (Polyak-Ruppert) average, ``every > 1`` stochastic weight
  averaging (Izmailov et al., arXiv 1803.05407, which averages once per cycle or epoch after ``start``). With
  ``second_moment`` it also keeps ``(1/K) sum vec(theta_t) vec(theta_t)^T`` per leaf, the matrix estimator
  whose top eigenvector is Wei, Damian & Lee's even-``k`` estimate (arXiv 2603.06028).
* :func:`ema_params`: ``e_t = decay e_{t-1} + (1 - decay) theta_t`` with the debiased read-out
  ``e_t / (1 - decay^t)``. This *is* ``optax.ema`` (reused as is), fed the iterates instead of the updates.

Counting: ``t`` counts updates, so ``theta_1`` is the first iterate after ``init``; ``theta_0 = init``'s
params is never averaged. The averages are kept in float32 or wider (``accumulator_dtype``).

>>> import jax.numpy as jnp, optax
>>> tx = optax.chain(optax.sgd(1.0), tail_average())
>>> params = jnp.array([0.0])
>>> state = tx.init(params)
>>> for g in (-1.0, -2.0, -3.0):   # iterates 1, 3, 6
...   u, state = tx.update(jnp.array([g]), state, params)
...   params = optax.apply_updates(params, u)
>>> round(float(averaged_params(state)[0]), 4)   # (1 + 3 + 6) / 3
3.3333
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optim import checks

PyTree = Any


def _acc_dtype(x: jax.Array, accumulator_dtype):
  return accumulator_dtype or jnp.promote_types(x.dtype, jnp.float32)


def _check_int(name: str, value: Any, minimum: int) -> None:
  # Integer arrays are fine (``optax.inject_hyperparams`` passes hyperparameters as arrays); tracers pass.
  if isinstance(value, jax.core.Tracer):
    return
  v = np.asarray(value)
  if v.shape != () or not np.issubdtype(v.dtype, np.integer) or v < minimum:
    raise ValueError(f'{checks.qualified(name)} must be an integer >= {minimum}, got {value!r}')


def _iterates(updates: PyTree, params: PyTree | None, what: str) -> PyTree:
  if params is None:
    raise ValueError(f'{what} needs params (the iterate is params + updates)')
  if jax.tree.structure(updates) != jax.tree.structure(params):
    raise ValueError(f'{what}: the updates tree {jax.tree.structure(updates)} does not match the params tree '
                     f'{jax.tree.structure(params)}')
  return jax.tree.map(lambda p, u: p + u.astype(p.dtype), params, updates)


class TailAverageState(NamedTuple):
  """Running uniform average of the selected iterates."""

  count: jax.Array  # int32, updates seen
  num_averaged: jax.Array  # int32, iterates in the average (K)
  mean: PyTree  # (1/K) sum theta_t
  second_moment: PyTree  # (1/K) sum vec(theta_t) vec(theta_t)^T per leaf, or () when not kept


def tail_average(start: int = 0, every: int = 1, second_moment: bool = False,
                 accumulator_dtype: Any = None) -> optax.GradientTransformation:
  """Uniform average of the iterates after ``start`` (every ``every``-th one): tail averaging and SWA.

  ``theta_bar_K = theta_bar_{K-1} + (theta_t - theta_bar_{K-1}) / K`` for each selected ``t``, i.e. exactly
  ``mean(theta_t for t in S)``; before the first selected iterate the average is zero.

  Args:
    start: iterates ``theta_t`` with ``t <= start`` are skipped (burn-in).
    every: keep one iterate in ``every`` (``1``: tail average; the SWA cycle length otherwise).
    second_moment: also keep ``(1/K) sum vec(theta_t) vec(theta_t)^T`` for every leaf (``n x n`` for a leaf
      of ``n`` entries: meant for small parameter vectors).
    accumulator_dtype: dtype of the averages (default: the leaf's dtype promoted to at least float32).

  Returns:
    A ``GradientTransformation`` that returns the updates unchanged; read the average with
    :func:`averaged_params` and :func:`averaged_second_moment`.
  """
  with checks.owner('tail_average') as name:
    _check_int('start', start, 0)
    _check_int('every', every, 1)

  def init_fn(params):
    mean = jax.tree.map(lambda p: jnp.zeros(p.shape, _acc_dtype(p, accumulator_dtype)), params)
    second = (jax.tree.map(lambda p: jnp.zeros((p.size, p.size), _acc_dtype(p, accumulator_dtype)), params)
              if second_moment else ())
    zero = jnp.zeros([], jnp.int32)
    return TailAverageState(zero, zero, mean, second)

  def update_fn(updates, state, params=None):
    theta = _iterates(updates, params, name)
    count = optax.safe_increment(state.count)
    take = (count > start) & ((count - start) % every == 0)
    k = state.num_averaged + take.astype(jnp.int32)
    weight = jnp.where(take, 1.0 / jnp.maximum(k, 1), 0.0)

    def step(avg, new):
      return avg + weight.astype(avg.dtype) * (new - avg)

    mean = jax.tree.map(lambda m, x: step(m, x.astype(m.dtype)), state.mean, theta)
    second = state.second_moment
    if second_moment:
      second = jax.tree.map(lambda s, x: step(s, jnp.outer(x.reshape(-1), x.reshape(-1)).astype(s.dtype)),
                            second, theta)
    return updates, TailAverageState(count, k, mean, second)

  return optax.GradientTransformation(init_fn, update_fn)


def swa(start: int, every: int = 1, accumulator_dtype: Any = None) -> optax.GradientTransformation:
  """Stochastic weight averaging (Izmailov et al., arXiv 1803.05407): :func:`tail_average` of every
  ``every``-th iterate after ``start`` (the paper's cycle length ``c``; ``every = steps per epoch`` for its
  per-epoch average with a constant learning rate)."""
  with checks.owner('swa'):
    return tail_average(start=start, every=every, accumulator_dtype=accumulator_dtype)


class EmaParamsState(NamedTuple):
  """``optax.ema``'s state fed the iterates, and the decay (so the average can be debiased when read)."""

  ema: optax.EmaState
  decay: jax.Array  # float32 scalar


def ema_params(decay: float, accumulator_dtype: Any = None) -> optax.GradientTransformation:
  """Exponential moving average of the parameters (the "EMA weights" of many training recipes).

  ``e_t = decay e_{t-1} + (1 - decay) theta_t`` from ``e_0 = 0``, read out debiased by
  :func:`averaged_params` as ``e_t / (1 - decay^t)``: the mean of ``theta_1..theta_t`` with weights
  proportional to ``decay^{t-s}``. The accumulation is ``optax.ema`` itself, fed the iterates instead of the
  updates.

  Args:
    decay: ``0 <= decay < 1``.
    accumulator_dtype: dtype of the average (default float32 or wider).

  Returns:
    A ``GradientTransformation`` returning the updates unchanged; read with :func:`averaged_params`.
  """
  with checks.owner('ema_params'):
    checks.decay_rate('decay', decay)
  inner = optax.ema(decay, debias=False, accumulator_dtype=accumulator_dtype)

  def init_fn(params):
    acc = jax.tree.map(lambda p: jnp.zeros(p.shape, _acc_dtype(p, accumulator_dtype)), params)
    return EmaParamsState(inner.init(acc), jnp.asarray(decay, jnp.float32))

  def update_fn(updates, state, params=None):
    theta = _iterates(updates, params, 'ema_params')
    theta = jax.tree.map(lambda x, m: x.astype(m.dtype), theta, state.ema.ema)
    _, ema = inner.update(theta, state.ema)
    return updates, EmaParamsState(ema, state.decay)

  return optax.GradientTransformation(init_fn, update_fn)


def _find(state: Any, kind: type) -> Any:
  """The first sub-state of type ``kind`` in a (nested) optimizer state, depth first."""
  if isinstance(state, kind):
    return state
  if isinstance(state, (tuple, list)):
    for s in state:
      found = _find(s, kind)
      if found is not None:
        return found
  if isinstance(state, dict):
    for s in state.values():
      found = _find(s, kind)
      if found is not None:
        return found
  return None


def averaged_params(state: Any, debias: bool = True) -> PyTree:
  """The average kept by the first :func:`tail_average` / :func:`swa` / :func:`ema_params` in ``state``.

  Args:
    state: an optimizer state (``optax.chain`` and ``inject_hyperparams`` states are searched depth first).
    debias: for :func:`ema_params`, divide by ``1 - decay^t`` (the raw ``e_t`` otherwise).

  Returns:
    The averaged parameters (in the accumulator dtype).
  """
  tail = _find(state, TailAverageState)
  if tail is not None:
    return tail.mean
  ema = _find(state, EmaParamsState)
  if ema is None:
    raise ValueError('averaged_params: no tail_average/swa/ema_params state in this optimizer state')
  if not debias:
    return ema.ema.ema
  correction = 1 - ema.decay ** ema.ema.count
  correction = jnp.where(correction > 0, correction, 1)
  return jax.tree.map(lambda m: m / correction.astype(m.dtype), ema.ema.ema)


def averaged_second_moment(state: Any) -> PyTree:
  """The per-leaf second-moment average of the first ``tail_average(second_moment=True)`` in ``state``."""
  tail = _find(state, TailAverageState)
  if tail is None or isinstance(tail.second_moment, tuple) and not tail.second_moment:
    raise ValueError('averaged_second_moment: no tail_average(second_moment=True) state found')
  return tail.second_moment
