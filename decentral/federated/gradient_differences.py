"""DIFF2: differentially private distributed optimisation that communicates clipped, noised gradient DIFFERENCES.

Murata & Suzuki, "DIFF2: Differential Private Optimization via Gradient Differences for Nonconvex Distributed
Learning", ICML 2023, arXiv 2302.03884 (no official code). Every worker privatises its own message (the server is
not trusted); the shared estimate v^r is rebuilt from clipped full gradients every T rounds and otherwise moved by
the average of clipped per-example gradient differences, whose clip C2 can be far smaller than the gradient clip C1
because consecutive iterates are close. Its privacy per record is the composition of the rounds' Gaussian
mechanisms (:func:`diff2_epsilon`, through ``dp_accounting``).

>>> import jax, jax.numpy as jnp
>>> from decentral import axis
>>> tx = diff2(0.1, restart_every=2, l2_norm_clip=1.0, diff_clip=0.1, noise_multiplier=0.0,
...            diff_noise_multiplier=0.0)
>>> grads_fn = lambda x, a: x[None] - a[None]          # one example per worker, loss |x - a|^2 / 2
>>> def step(x, a):
...   s = tx.init(x)
...   u, s = tx.update(grads_fn(x, a), s, x, per_example_grads_fn=lambda p: grads_fn(p, a))
...   return u
>>> u = axis.run(step, 2)(jnp.zeros((2, 1)), jnp.array([[0.5], [-3.0]]))
>>> [round(v, 4) for v in u[:, 0].tolist()]  # -0.1 mean(clip(-0.5, 1), clip(3, 1)), the same on both workers
[-0.025, -0.025]
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import dp_accounting
import jax
import jax.numpy as jnp
import optax
from jax import lax

from decentral import axis, checks
from optim import checks as optim_checks
from optim.trees import gaussian_like
from optim.privacy import accounting, clipping

PyTree = Any


class Diff2State(NamedTuple):
  estimate: PyTree   # v^{r-1}: the shared gradient estimate (public: built from privatised messages only)
  previous: PyTree   # x^{r-1}: this worker's parameters of the previous round
  key: jax.Array     # the noise key; worker m's noise of round r comes from fold_in(fold_in(key, r), m)
  count: jax.Array   # the round r (int32)


def diff2(learning_rate: float, *, restart_every: int, l2_norm_clip: float, diff_clip: float,
          noise_multiplier: float, diff_noise_multiplier: float, expected_batch_size: int | None = None,
          axis_name: str | None = 'workers', seed: int = 0) -> optax.GradientTransformationExtraArgs:
  """DIFF2 with the gradient-descent subroutine, written for one worker on ``axis_name``.

  Round r on worker p, with per-example gradients g_i(x) of its b local examples (b the expected batch size)::

      restart (r = 0 mod T):  m_p = (1/b) [ sum_i clip(g_i(x^r), C1)                    + N(0, (sigma1 C1)^2 I) ]
      otherwise:              m_p = (1/b) [ sum_i clip(g_i(x^r) - g_i(x^{r-1}), C2)      + N(0, (sigma2 C2)^2 I) ]
      v^r = mean_p m_p   (restart)   or   v^{r-1} + mean_p m_p,          x^{r+1} = x^r - eta v^r.

  The difference uses the same examples at x^r and x^{r-1} (``per_example_grads_fn`` is evaluated on the batch of
  this round). Each worker draws its own noise (independent keys per worker and round) before the average: every
  message is private on its own, so the server need not be trusted, and the average's noise has variance
  (sigma C)^2 / (b^2 P) per coordinate. Examples with non-finite entries contribute zero (the rule of
  :mod:`optim.privacy.clipping`).

  ``update(updates, state, params, *, per_example_grads_fn)``: ``updates`` are this worker's per-example gradients at
  ``params`` (leading batch axis), ``per_example_grads_fn(x)`` gives them at any x on the same examples (called
  at x^{r-1}).

  Args:
    learning_rate: eta.
    restart_every: T, the restart period (T = 1 is DP-GD).
    l2_norm_clip: C1, the per-example clip of the restart gradients.
    diff_clip: C2, the per-example clip of the gradient differences.
    noise_multiplier: sigma1 (noise std over C1 on the restart sums).
    diff_noise_multiplier: sigma2 (noise std over C2 on the difference sums).
    expected_batch_size: b; by default the number of rows (the full local dataset of the GD subroutine).
    axis_name: the worker axis (None: one worker).
    seed: the noise key.

  Returns:
    A ``GradientTransformationExtraArgs`` returning ``-eta v^r`` (the same on every worker); state
    :class:`Diff2State`.

  Convention: the paper's notation and sensitivities (add/remove one record of a worker: C/b per message); its
  theorem's choices of T, C1, C2, sigma1, sigma2 are the caller's (see :func:`diff2_epsilon` for the budget).
  """
  optim_checks.check('diff2: learning_rate', learning_rate, lambda v: v >= 0, 'finite and >= 0')
  period = checks.positive_int(restart_every, 'diff2: restart_every')
  clipping.check_clip(l2_norm_clip, 'diff2')
  clipping.check_clip(diff_clip, 'diff2: diff_clip')
  optim_checks.non_negative('diff2: noise_multiplier', noise_multiplier)
  optim_checks.non_negative('diff2: diff_noise_multiplier', diff_noise_multiplier)

  def init_fn(params):
    estimate = jax.tree.map(lambda p: jnp.zeros(jnp.shape(p), clipping.compute_dtype(jnp.asarray(p))), params)
    return axis.varying(Diff2State(estimate, params, jax.random.key(seed), jnp.zeros([], jnp.int32)), axis_name)

  def update_fn(updates, state, params=None, *, per_example_grads_fn: Callable[[PyTree], PyTree] | None = None,
                **extra):
    del extra
    if params is None or per_example_grads_fn is None:
      raise ValueError('diff2 needs params and per_example_grads_fn: '
                       'update(per_example_grads, state, params, per_example_grads_fn=...)')
    rows = clipping.batch_size(updates)
    optim_checks.same_structure(jax.tree.map(lambda x: x[0], updates), params, 'diff2 per-example updates')
    b = rows if expected_batch_size is None else expected_batch_size
    restart = state.count % period == 0
    differences = jax.tree.map(lambda g, h: g.astype(clipping.compute_dtype(g)) - h.astype(clipping.compute_dtype(g)),
                               updates, per_example_grads_fn(state.previous))
    key = axis.worker_key(state.key, state.count, axis_name)
    full = _message(updates, l2_norm_clip, noise_multiplier, b, jax.random.fold_in(key, 0))
    diff = _message(differences, diff_clip, diff_noise_multiplier, b, jax.random.fold_in(key, 1))
    message = jax.tree.map(lambda f, d: jnp.where(restart, f, d), full, diff)
    if axis_name is not None:
      message = lax.pmean(message, axis_name)
    estimate = jax.tree.map(lambda v, m: jnp.where(restart, m, v + m), state.estimate, message)
    out = jax.tree.map(lambda v, p: (-learning_rate * v).astype(jnp.asarray(p).dtype), estimate, params)
    new = Diff2State(estimate, params, state.key, optax.safe_increment(state.count))
    return out, axis.varying(new, axis_name)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _message(per_example: PyTree, clip: float, sigma: float, b, key: jax.Array) -> PyTree:
  """``(1/b) [sum_i clip(g_i, C) + N(0, (sigma C)^2 I)]``: one worker's private message."""
  total = clipping.clipped_sum(per_example, clip)
  std = jnp.where(jnp.asarray(sigma) == 0, 0.0, jnp.asarray(sigma, float) * jnp.asarray(clip, float))
  noise = gaussian_like(key, total)
  return jax.tree.map(lambda s, z: (s + std.astype(z.dtype) * z) / b, total, noise)


def diff2_event(noise_multiplier: float, diff_noise_multiplier: float, rounds: int, restart_every: int,
                sampling_rate: float = 1.0) -> dp_accounting.DpEvent:
  """The ``DpEvent`` of a record over ``rounds`` rounds of DIFF2: ceil(R/T) restart rounds (Gaussian of noise
  multiplier sigma1) composed with the R - ceil(R/T) difference rounds (sigma2); each round's message is a Gaussian
  mechanism of sensitivity C/b (add/remove one record of its worker). ``sampling_rate < 1`` (Poisson minibatches
  instead of the full local dataset) wraps each in ``PoissonSampledDpEvent``."""
  checks.non_negative_int(rounds, 'diff2_event: rounds')
  period = checks.positive_int(restart_every, 'diff2_event: restart_every')
  restarts = math.ceil(rounds / period)

  def rounds_of(sigma, count):
    event = dp_accounting.GaussianDpEvent(sigma)
    if sampling_rate < 1:
      event = dp_accounting.PoissonSampledDpEvent(sampling_rate, event)
    return dp_accounting.SelfComposedDpEvent(event, count)

  return dp_accounting.ComposedDpEvent([rounds_of(noise_multiplier, restarts),
                                        rounds_of(diff_noise_multiplier, rounds - restarts)])


def diff2_epsilon(noise_multiplier: float, diff_noise_multiplier: float, rounds: int, restart_every: int,
                  delta: float, *, sampling_rate: float = 1.0, accountant: str = 'rdp') -> float:
  """The record-level epsilon of ``rounds`` DIFF2 rounds at ``delta`` (:func:`diff2_event` through
  ``optim.privacy.event_epsilon``: dp_accounting's RDP or PLD accountant)."""
  return accounting.event_epsilon(diff2_event(noise_multiplier, diff_noise_multiplier, rounds, restart_every,
                                              sampling_rate), delta, accountant=accountant)


def single_example_oracle(loss_fn: Callable[[PyTree], jax.Array]) -> dict[str, Callable[[PyTree], PyTree]]:
  """``per_example_grads_fn`` for a worker that only has its loss: the loss as ONE example (batch axis of 1).

  What the registry's oracle mechanism can give (``loss_fn(params)`` of this worker's batch); with it the record
  is the worker's whole batch, not an example. Real training passes per-example gradients of its batch.
  """
  return {'per_example_grads_fn': lambda p: jax.tree.map(lambda g: g[None], jax.grad(loss_fn)(p))}
