"""Spherical Langevin dynamics with the tail average (``optim.sgld`` chained with ``optim.tail_average``) and the
estimates read from the averages."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

import optim
from theory.langevin.problems import check_k, loss_fn, oracle, unit_vector


def estimate(first: jax.Array, second: jax.Array | None, k: int) -> jax.Array:
  """Unit direction from the averages: ``theta_bar / ||theta_bar||`` (odd k) or the top eigenvector (even)."""
  if k % 2:
    return first / jnp.linalg.norm(first)
  return jnp.linalg.eigh(0.5 * (second + second.T))[1][:, -1]


def overlap(v: jax.Array, star: jax.Array, k: int) -> jax.Array:
  """``<v, theta*>`` for odd k (the sign is identifiable), ``|<v, theta*>|`` for even k."""
  c = jnp.dot(v, star) / jnp.linalg.norm(v)
  return c if k % 2 else jnp.abs(c)


def run_langevin(problem: dict[str, jax.Array], k: int, *, eps: float, h: float, steps: int, burn_in: int = 0,
                 record_every: int = 0, seed: int = 0) -> dict[str, jax.Array]:
  """Spherical Langevin from a uniform start, with the tail average (and second moment for even k).

  Uses ``optim.sgld(h * eps, beta=2 eps, sphere_radius=1)`` chained with
  ``optim.tail_average(burn_in, second_moment=(k even))``.

  Args:
    problem: from :func:`tensor_problem` or :func:`single_index_problem`.
    k: 3 or 4.
    eps: the signal strength ``eps`` of the SDE (inverse temperature ``2 eps``).
    h: time step.
    steps: number of steps.
    burn_in: iterates up to this step are not averaged.
    record_every: if positive, record the running overlaps every that many steps.
    seed: PRNG seed of the start and the noise.

  Returns:
    ``last``, ``average`` (the estimate), ``oracle_cosine`` (``|cos|`` between the average's estimate and the
    oracle's), their overlaps with ``theta*``, and with ``record_every`` the traces ``trace_last``,
    ``trace_average`` (overlaps over time).
  """
  check_k(k)
  loss = loss_fn(problem, k)
  star = problem['theta_star']
  d = star.shape[0]
  tx = optax.chain(optim.sgld(h * eps, beta=2 * eps, seed=seed, sphere_radius=1.0),
                   optim.tail_average(start=burn_in, second_moment=(k % 2 == 0)))
  theta0 = unit_vector(jax.random.fold_in(jax.random.key(seed), 1 << 20), d)
  grad = jax.grad(loss)

  def step(carry, _):
    theta, state = carry
    updates, state = tx.update(grad(theta), state, theta)
    return (theta + updates, state), None

  def read(theta, state):
    avg = optim.averaged_params(state)
    second = optim.averaged_second_moment(state) if k % 2 == 0 else None
    return theta, estimate(avg, second, k)

  carry = (theta0, tx.init(theta0))
  out = {}
  if record_every:
    def block(carry, _):
      carry, _ = jax.lax.scan(step, carry, None, length=record_every)
      last, avg = read(*carry)
      return carry, (overlap(last, star, k), overlap(avg, star, k))
    carry, (out['trace_last'], out['trace_average']) = jax.lax.scan(block, carry, None,
                                                                    length=steps // record_every)
    out['trace_steps'] = jnp.arange(1, steps // record_every + 1) * record_every
  else:
    carry, _ = jax.lax.scan(step, carry, None, length=steps)
  last, avg = read(*carry)
  orc = estimate(*(oracle(problem, k), None) if k % 2 else (None, oracle(problem, k)), k)
  out.update(last=overlap(last, star, k), average=overlap(avg, star, k), oracle=overlap(orc, star, k),
             oracle_cosine=jnp.abs(jnp.dot(avg, orc)))
  return out
