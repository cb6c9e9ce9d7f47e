"""The online-learning harness: play an optax transform against a loss sequence and measure its regret.

:func:`play` runs the protocol of online convex optimisation with one gradient per round: the learner plays
``x_t`` (its parameters), observes ``g_t = grad f_t(x_t)`` and updates. :func:`linear_regret` does so on linear
losses over a Euclidean ball, where the best fixed point in hindsight is explicit:

    Regret_t = sum_{s<=t} <theta_s, x_s> - min_{||x|| <= r} sum_{s<=t} <theta_s, x>
             = sum_{s<=t} <theta_s, x_s> + r ||sum_{s<=t} theta_s||.

>>> import jax, jax.numpy as jnp
>>> from optim.online.optimistic import optimistic_omd
>>> theta = jnp.tile(jnp.array([1.0, 0.0]), (50, 1))   # the same loss every round: predictable
>>> run = linear_regret(optimistic_omd(radius=1.0), theta, jnp.zeros(2), radius=1.0)
>>> run.regret.shape, bool(run.regret[-1] < 2.0)
((50,), True)
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

PyTree = Any


class OnlineRun(NamedTuple):
  """Iterates ``x_t`` (T, ...) played before each update, their losses (T,) and the cumulative regret (T,)."""

  iterates: PyTree
  losses: jax.Array
  regret: jax.Array


def play(tx: optax.GradientTransformation, loss_fn: Callable[[PyTree, Any], jax.Array], x0: PyTree, data: Any
         ) -> tuple[PyTree, jax.Array]:
  """Plays ``tx`` from ``x0`` against ``f_t = loss_fn(., data[t])``; returns the played iterates and losses."""

  def round_(carry, datum):
    x, state = carry
    loss, g = jax.value_and_grad(loss_fn)(x, datum)
    updates, state = tx.update(g, state, x)
    return (optax.apply_updates(x, updates), state), (x, loss)

  _, (iterates, losses) = jax.lax.scan(round_, (x0, tx.init(x0)), data)
  return iterates, losses


def linear_regret(tx: optax.GradientTransformation, theta: jax.Array, x0: jax.Array, radius: float) -> OnlineRun:
  """Plays ``tx`` on ``f_t(x) = <theta_t, x>`` (``theta``: (T, d)) over the ball of ``radius``; cumulative regret
  against the best fixed point of the ball in hindsight at every horizon t."""
  iterates, losses = play(tx, lambda x, th: jnp.vdot(th, x), x0, theta)
  best = -radius * jnp.linalg.norm(jnp.cumsum(theta, axis=0), axis=1)
  return OnlineRun(iterates, losses, jnp.cumsum(losses) - best)
