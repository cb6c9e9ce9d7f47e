"""Two learners in a bilinear zero-sum game ``min_x max_y x^T A y``, each an optax transform.

Both players move at once from the gradients at the current pair: ``g_x = A y_t`` for the minimiser and
``g_y = -A^T x_t`` for the maximiser (who minimises ``-x^T A y``). Without optimism the last iterates of
gradient descent-ascent spiral away from the equilibrium on R^d and multiplicative weights cycle towards the
boundary of the simplex; with the last gradient as hint (optimistic OMD) they converge (Daskalakis et al. 2018;
Daskalakis & Panageas 2019; the game of arXiv 2302.04552's framework with two learners).

:func:`duality_gap` measures a pair of mixed strategies: ``max_j (A^T x)_j - min_i (A y)_i >= 0``, zero exactly at
a Nash equilibrium.

>>> import jax.numpy as jnp
>>> from optim.online.optimistic import optimistic_omd
>>> A = jnp.array([[1.0, -1.0], [-1.0, 1.0]])   # matching pennies, equilibrium (1/2, 1/2)
>>> tx = optimistic_omd(0.1, mirror_map='entropy')
>>> run = bilinear_game(tx, tx, A, jnp.array([0.9, 0.1]), jnp.array([0.3, 0.7]), 3000)
>>> bool(duality_gap(A, run.x[-1], run.y[-1]) < 1e-3)
True
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


class GameRun(NamedTuple):
  """The two players' iterates, each (T, ...), the pair played at rounds 1..T."""

  x: jax.Array
  y: jax.Array


def bilinear_game(tx_x: optax.GradientTransformation, tx_y: optax.GradientTransformation, A: jax.Array,
                  x0: jax.Array, y0: jax.Array, rounds: int) -> GameRun:
  """Simultaneous play of ``min_x max_y x^T A y`` for ``rounds`` rounds from ``(x0, y0)``."""

  def round_(carry, _):
    x, y, sx, sy = carry
    ux, sx = tx_x.update(A @ y, sx, x)
    uy, sy = tx_y.update(-A.T @ x, sy, y)
    return (x + ux, y + uy, sx, sy), (x, y)

  _, (xs, ys) = jax.lax.scan(round_, (x0, y0, tx_x.init(x0), tx_y.init(y0)), None, length=rounds)
  return GameRun(xs, ys)


def duality_gap(A: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
  """``max_j (A^T x)_j - min_i (A y)_i`` for mixed strategies x, y (the last axis; batched over leading axes)."""
  return jnp.max(jnp.einsum('...i,ij->...j', x, A), axis=-1) - jnp.min(jnp.einsum('ij,...j->...i', A, y), axis=-1)
