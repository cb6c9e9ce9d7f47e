"""Composite stochastic mirror descent (CSMD), the method whose last iterate Liu & Zhou analyse (arXiv 2312.08531).

    x_{t+1} = argmin_{x in X}  eta_t <g_t, x> + eta_t h(x) + D_psi(x, x_t),     E[g_t] in d f(x_t),

with ``D_psi`` the Bregman divergence of a ``psi`` 1-strongly convex in the chosen norm. Two geometries:

* Euclidean (``psi = ||x||^2 / 2``, ``X = R^d``): the proximal SGD step ``x_{t+1} = prox_{eta_t h}(x_t - eta_t g_t)``;
* simplex (``psi`` the negative entropy, 1-strongly convex in ``||.||_1``, ``h = 0``): exponentiated gradient,
  ``x_{t+1} ∝ x_t * exp(-eta_t g_t)``.

Step sizes (anytime: one run gives the last iterate at every ``T``): ``eta_t = eta / t^power`` (``power = 1/2``
for the convex settings; ``1/p`` under noise with ``p``-th moments, ``p < 2``) or ``eta_t = 1 / (mu t)``
(strongly convex). The paper also analyses the fixed-horizon ``eta / sqrt(T)``; that schedule needs one run per
``T`` and is not used here. The uniform average ``(1/t) sum_{s<=t} x_s`` is logged beside the last iterate.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from theory.last_iterate.problems import Problem
from theory.numerics import float64


def schedule(kind: str, eta: float, mu: float = 0.0, power: float = 0.5):
  """``t -> eta_t`` (``t >= 1``): ``'power'`` is ``eta / t^power``; ``'strongly_convex'`` is ``1 / (mu t)``."""
  if kind == 'power':
    return lambda t: eta / t ** power
  if kind == 'strongly_convex':
    if mu <= 0:
      raise ValueError(f'last_iterate.schedule: strongly_convex needs mu > 0, got {mu}')
    return lambda t: 1.0 / (mu * t)
  raise ValueError(f"last_iterate.schedule: kind must be 'power' or 'strongly_convex', got {kind!r}")


def csmd_step(problem: Problem, x, g, eta):
  """One CSMD step from ``x`` with the stochastic gradient ``g`` and step ``eta`` (see the module docstring)."""
  if problem.geometry == 'simplex':
    logits = jnp.log(x) - eta * g
    return jax.nn.softmax(logits)
  return problem.prox(x - eta * g, eta)


@float64
def run_csmd(problem: Problem, steps_fn, checkpoints: Sequence[int], num_seeds: int, seed: int = 0) -> dict:
  """Runs CSMD ``num_seeds`` times (``vmap``) and records ``F(x_T) - F*`` at the ``checkpoints``.

  ``x_T`` is the iterate after ``T`` steps (``x_1 = problem.x0``, steps ``t = 1..T`` use ``eta_t``).

  Args:
    problem: a :class:`Problem`.
    steps_fn: ``t -> eta_t`` (:func:`schedule`).
    checkpoints: increasing positive step counts ``T``.
    num_seeds: independent runs.
    seed: integer seed (run ``i`` uses ``fold_in(key(seed), i)``; step ``t`` folds in ``t``).

  Returns:
    ``{'T', 'last' (num_seeds, len(T)), 'average' (num_seeds, len(T))}``: suboptimality of the last and of the
    uniformly averaged iterate.
  """
  ts = np.asarray(checkpoints, np.int64)
  if ts.ndim != 1 or ts[0] < 1 or np.any(np.diff(ts) <= 0):
    raise ValueError(f'last_iterate.run_csmd: checkpoints must increase from >= 1, got {checkpoints}')
  bounds = jnp.asarray(np.stack([np.concatenate([[0], ts[:-1]]), ts], 1))
  x0 = jnp.asarray(problem.x0, jnp.float64)

  def one_run(key):
    def body(t, carry):  # t = 0-based step index; the step uses eta_{t+1}
      x, total = carry
      g = problem.grad(x, jax.random.fold_in(key, t))
      x = csmd_step(problem, x, g, steps_fn(t + 1.0))
      return x, total + x

    def segment(carry, se):
      carry = jax.lax.fori_loop(se[0], se[1], body, carry)
      x, total = carry
      # The iterate after T steps, and the mean of the T iterates the steps produced.
      return carry, (problem.value(x) - problem.f_star, problem.value(total / se[1]) - problem.f_star)

    _, (last, avg) = jax.lax.scan(segment, (x0, jnp.zeros_like(x0)), bounds)
    return last, avg

  keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(seed), i))(jnp.arange(num_seeds))
  last, avg = jax.jit(jax.vmap(one_run))(keys)
  return {'T': ts, 'last': np.asarray(last), 'average': np.asarray(avg)}
