"""Optimistic online mirror descent (Chen, Zhang, Tu, Zhao & Zhang, arXiv 2302.04552) as an optax transform.

Round t, with a hint ``M_t`` of the coming gradient (the last observed gradient by default) and a mirror map psi
(:mod:`optim.online.mirror_maps`):

    x_t       = argmin_{x in X} <M_t, x> + B_psi(x, xhat_t) / eta_t        (play)
    g_t       = grad f_t(x_t)                                               (observe)
    xhat_{t+1} = argmin_{x in X} <g_t, x> + B_psi(x, xhat_t) / eta_t        (update)

The paper's step size for convex, smooth expected losses (the SEA model) adapts to the optimism error,

    eta_t = D / sqrt(delta + sum_{s<t} ||g_s - M_s||_*^2),

so the regret is O(sqrt(sigma^2_{1:T}) + sqrt(Sigma^2_{1:T})): small when gradients are predictable, whether the
sequence is stochastic (sigma: variance) or adversarial (Sigma: variation). Passing ``learning_rate`` (a number or
a schedule, e.g. :func:`strongly_convex_schedule`) replaces it.

As an optax transform the played point is the parameter: ``update`` receives ``g_t`` at ``params = x_t`` and
returns ``x_{t+1} - x_t``. ``xhat`` lives in the state; the first play is ``x_1 = xhat_1 = params`` (``M_1 = 0``).

Forms. ``form='two_sequence'`` is the paper's algorithm above. ``form='one_step'`` is the single-projection
variant (Joulani, Gyorgy & Szepesvari 2017; Orabona's notes): ``x_{t+1} = argmin <g_t + M_{t+1} - M_t, x> +
B_psi(x, x_t) / eta_t``, which keeps no ``xhat``. For R^d with the Euclidean map and a constant eta both are
``x_{t+1} = x_t - eta (2 g_t - g_{t-1})``, i.e. ``optax.optimistic_gradient_descent(eta, alpha=1, beta=1)``,
except in the first round: the paper's ``M_1 = 0`` gives ``x_2 = x_1 - 2 eta g_1``, while optax (0.2.8, its
issue #1082) takes ``g_0 = g_1``, a plain first step ``x_2 = x_1 - eta g_1``. ``first_hint='gradient'`` is optax's
convention (``M_1 = g_1``, ``xhat_2 = x_1``); with it the two agree to float precision (tested). The two forms
differ with projections and with changing step sizes. The registered entry uses ``one_step``: there the injected
learning rate scales the move of the current round (``eta = 0`` stops the iterate), the contract every registered
optimizer keeps; in the two-sequence form ``eta_{t+1} = 0`` moves ``x`` back to ``xhat``.

>>> import jax.numpy as jnp, optax
>>> tx = optimistic_omd(learning_rate=0.1)
>>> x = jnp.array([1.0, -1.0])
>>> state = tx.init(x)
>>> u, state = tx.update(jnp.array([1.0, 0.0]), state, x)
>>> [round(float(v), 6) for v in u]   # -0.1 * (2 g_1 - 0)
[-0.2, 0.0]
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from optim import checks
from optim.online import mirror_maps

PyTree = Any
FORMS = ('two_sequence', 'one_step')
FIRST_HINTS = ('zero', 'gradient')


class OptimisticOMDState(NamedTuple):
  """``xhat`` (the paper's second sequence; the played point in the one-step form), the hint of the current round
  ``M_t``, the running sum of ``||g_s - M_s||_*^2`` and the round count."""

  xhat: PyTree
  hint: PyTree
  error_sq_sum: jax.Array  # float32 (float64 for float64 parameters)
  count: jax.Array  # int32


def strongly_convex_schedule(strong_convexity: float) -> optax.Schedule:
  """``eta_t = 1 / (lambda t)`` (t = 1, 2, ...): the classical step for lambda-strongly convex losses."""
  if not strong_convexity > 0:
    raise ValueError(f'strongly_convex_schedule: strong_convexity must be > 0, got {strong_convexity!r}')
  return lambda count: 1.0 / (strong_convexity * (jnp.asarray(count, jnp.float32) + 1.0))


def _wide(x):
  return jnp.asarray(x).astype(jnp.promote_types(jnp.result_type(x), jnp.float32))


def optimistic_omd(learning_rate: optax.ScalarOrSchedule | None = None, *, mirror_map: str = 'euclidean',
                   radius: float | None = None, diameter: float | None = None, delta: float = 1e-8,
                   optimism: bool = True, form: str = 'two_sequence', first_hint: str = 'zero'
                   ) -> optax.GradientTransformationExtraArgs:
  """Optimistic OMD (arXiv 2302.04552) with the last gradient as hint and the paper's adaptive step size.

  Args:
    learning_rate: a constant step, a schedule ``count -> eta`` (``count`` = rounds played before), or None
      for the adaptive ``eta_t = D / sqrt(delta + sum_{s<t} ||g_s - M_s||_*^2)``.
    mirror_map: ``'euclidean'`` (the ball of ``radius``, or R^d) or ``'entropy'`` (the simplex of each leaf's last
      axis; parameters are normalised at ``init``).
    radius: the Euclidean ball's radius (None: unconstrained).
    diameter: D of the adaptive step; by default ``2 radius`` (Euclidean ball) or ``sqrt(2 log n)`` (simplex).
      Required for the adaptive step on R^d.
    delta: keeps the first adaptive step finite.
    optimism: False gives plain OMD (``M_t = 0``), the baseline of the paper.
    form: ``'two_sequence'`` (the paper) or ``'one_step'`` (single projection; see the module docstring; its
      adaptive step already counts the current round's error).
    first_hint: ``'zero'`` (the paper, ``M_1 = 0``) or ``'gradient'`` (``M_1 = g_1``: a plain first step, optax's
      convention for ``optimistic_gradient_descent``).

  Returns:
    A ``GradientTransformationExtraArgs``; ``update(g_t, state, params=x_t, hint=None)`` returns ``x_{t+1} - x_t``.
    ``hint`` (a tree like the gradient) replaces the last gradient as ``M_{t+1}``, e.g. an extrapolation.
  """
  if form not in FORMS:
    raise ValueError(f'optimistic_omd: form must be one of {FORMS}, got {form!r}')
  if first_hint not in FIRST_HINTS:
    raise ValueError(f'optimistic_omd: first_hint must be one of {FIRST_HINTS}, got {first_hint!r}')
  checks.non_negative('optimistic_omd: delta', delta)
  if learning_rate is not None:
    checks.learning_rate(learning_rate, 'optimistic_omd: learning_rate')
  if diameter is not None:
    checks.check('optimistic_omd: diameter', diameter, lambda v: v > 0, 'positive and finite')
  mirror = mirror_maps.get(mirror_map, radius)

  def step_size(params, state, error_sq_sum, count):
    if learning_rate is None:
      d = diameter if diameter is not None else mirror.diameter(params)
      if d is None:
        raise ValueError('optimistic_omd: the adaptive step size on R^d needs diameter= (or a radius, or a '
                         'learning_rate)')
      return d / jnp.sqrt(delta + error_sq_sum)
    return learning_rate(count) if callable(learning_rate) else learning_rate

  def init_fn(params):
    xhat = mirror.project(jax.tree.map(_wide, params))
    hint = jax.tree.map(lambda p: jnp.zeros(jnp.shape(p), jnp.result_type(_wide(p))), params)
    dtype = jnp.result_type(*jax.tree.leaves(xhat))  # float32, or float64 for float64 parameters
    return OptimisticOMDState(xhat, hint, jnp.zeros([], dtype), jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None, hint=None, **extra):
    del extra
    if params is None:
      raise ValueError('optimistic_omd needs params (the point played this round)')
    checks.same_structure(updates, state.hint, 'optimistic_omd')
    g = jax.tree.map(_wide, updates)
    x = jax.tree.map(_wide, params)
    first = state.count == 0
    hint_now = state.hint
    if first_hint == 'gradient':  # M_1 = g_1: the first round is a plain step from x_1
      hint_now = jax.tree.map(lambda a, m: jnp.where(first, a.astype(m.dtype), m), g, state.hint)
    error = mirror.dual_sq_norm(jax.tree.map(lambda a, m: a - m, g, hint_now) if optimism else g)
    error_sq_sum = state.error_sq_sum + error.astype(state.error_sq_sum.dtype)
    if hint is not None:
      next_hint = jax.tree.map(lambda h, m: _wide(h).astype(m.dtype), hint, state.hint)
    elif optimism:
      next_hint = jax.tree.map(lambda a, m: a.astype(m.dtype), g, state.hint)
    else:
      next_hint = state.hint
    eta_now = step_size(params, state, state.error_sq_sum, state.count)
    if form == 'two_sequence':
      eta_next = step_size(params, state, error_sq_sum, state.count + 1)
      xhat = mirror.step(state.xhat, g, eta_now)
      if first_hint == 'gradient':  # x_1 = step(xhat_1, g_1): then xhat_2 = x_1
        xhat = jax.tree.map(lambda a, b: jnp.where(first, b.astype(a.dtype), a), xhat, x)
      new_x = mirror.step(xhat, next_hint, eta_next)
    else:
      eta = step_size(params, state, error_sq_sum, state.count)
      direction = jax.tree.map(lambda a, h, m: a + h - m, g, next_hint, hint_now)
      new_x = xhat = mirror.step(x, direction, eta)
    xhat = jax.tree.map(lambda a, s: a.astype(s.dtype), xhat, state.xhat)
    out = jax.tree.map(lambda n, a, p: (n - a).astype(jnp.result_type(p)), new_x, x, params)
    return out, OptimisticOMDState(xhat, next_hint, error_sq_sum, optax.safe_increment(state.count))

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
