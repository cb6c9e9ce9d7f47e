"""Langevin dynamics as optax transforms: SGLD noise and the projection to a sphere.

Stochastic gradient Langevin dynamics (Welling & Teh, ICML 2011) with inverse temperature ``beta``:

    theta_{t+1} = theta_t - eta_t g_t + sqrt(2 eta_t / beta) xi_t,        xi_t ~ N(0, I),

an Euler-Maruyama step of ``d theta = -grad L dt + sqrt(2 / beta) dW`` whose stationary law is
``exp(-beta L)``. With ``sphere_radius`` the step is taken on the sphere ``||theta|| = rho`` (the spherical
Langevin dynamics of Wei, Damian & Lee, arXiv 2603.06028): the gradient and the noise are projected to the
tangent space ``P = I - theta theta^T / rho^2`` and the point is retracted, ``theta <- rho (theta + u) /
||theta + u||``. With ``eta = h eps`` and ``beta = 2 eps`` this is their SDE
``d theta = eps b(theta) dt + P dW`` on ``S^{d-1}`` (``b = -grad L``) with time step ``h``; its stationary law
is ``exp(-2 eps L)``.

Why not ``optax.add_noise``: it adds ``N(0, eta / (1 + t)^gamma)`` to the *gradient*, so the noise in the
step is ``lr * sqrt(eta)``, linear in the learning rate rather than ``sqrt(2 lr / beta)``; matching SGLD would
need ``eta = 2 / (lr beta)``, which breaks for learning-rate schedules and for ``lr = 0``, and its key
advances by ``split`` rather than ``fold_in(key, count)``. Here the noise is added to the already scaled step,
so it follows any schedule and vanishes with the learning rate.

>>> import jax, jax.numpy as jnp, optax
>>> tx = sgld(learning_rate=0.1, beta=1e4, seed=0)
>>> params = {'w': jnp.ones(3)}
>>> state = tx.init(params)
>>> updates, state = tx.update({'w': jnp.ones(3)}, state, params)
>>> updates['w'].shape, int(state[1].count)
((3,), 1)
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optim import checks
from optim.trees import gaussian_like


PyTree = Any


def _check(name: str, value: Any, ok, expected: str) -> None:
  """Raises ``ValueError`` naming ``name`` unless ``ok(value)``; traced and scheduled values pass."""
  if isinstance(value, jax.core.Tracer) or callable(value):
    return
  v = float(np.asarray(value))
  if math.isnan(v) or not ok(v):
    raise ValueError(f'{checks.qualified(name)} must be {expected}, got {value!r}')


def _sq_norm(tree: PyTree, dtype) -> jax.Array:
  return sum(jnp.sum(jnp.square(x.astype(dtype))) for x in jax.tree.leaves(tree))


def _vdot(a: PyTree, b: PyTree, dtype) -> jax.Array:
  return sum(jnp.sum(x.astype(dtype) * y.astype(dtype)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


class LangevinNoiseState(NamedTuple):
  """A fixed key and the step count; step ``t`` draws its noise from ``fold_in(key, t)``."""

  key: jax.Array
  count: jax.Array  # int32


def add_langevin_noise(learning_rate: optax.ScalarOrSchedule, beta: float = 1.0, seed: int = 0
                       ) -> optax.GradientTransformation:
  """Adds the SGLD noise ``sqrt(2 eta_t / beta) xi_t`` to an already scaled step.

  Place it after ``optax.scale_by_learning_rate(learning_rate)`` (as :func:`sgld` does): the incoming updates
  are ``-eta_t g_t`` and the outgoing ones ``-eta_t g_t + sqrt(2 eta_t / beta) xi_t``.

  Args:
    learning_rate: ``eta`` or a schedule ``t -> eta_t`` (the same one the step is scaled with).
    beta: inverse temperature ``beta > 0`` (``math.inf`` adds no noise).
    seed: the noise of step ``t`` is drawn from ``fold_in(key(seed), t)``.

  Returns:
    A ``GradientTransformation``; the noise is drawn in float32 (float64 for float64 leaves) and the updates
    are returned in their own dtype.
  """
  with checks.owner('add_langevin_noise'):
    _check('beta', beta, lambda v: v > 0, 'positive')
    checks.learning_rate(learning_rate)

  def init_fn(params):
    del params
    return LangevinNoiseState(jax.random.key(seed), jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None):
    del params
    eta = learning_rate(state.count) if callable(learning_rate) else learning_rate
    scale = jnp.sqrt(2.0 * jnp.asarray(eta, jnp.float32) / beta)
    noise = gaussian_like(jax.random.fold_in(state.key, state.count), updates)
    updates = jax.tree.map(lambda u, z: (u.astype(z.dtype) + scale.astype(z.dtype) * z).astype(u.dtype),
                           updates, noise)
    return updates, LangevinNoiseState(state.key, optax.safe_increment(state.count))

  return optax.GradientTransformation(init_fn, update_fn)


def project_to_sphere(radius: float = 1.0, tangent: bool = True) -> optax.GradientTransformation:
  """Turns a step ``u`` into the move to the sphere: ``rho (theta + u) / ||theta + u|| - theta``.

  The norm is the global norm of the whole parameter tree (the sphere is ``S^{D-1}`` of the flattened
  parameters). With ``tangent`` the radial part of ``u`` is removed first, ``u <- u - <u, theta> theta /
  rho^2`` (the Riemannian gradient and the tangent noise ``P dW`` of spherical Langevin dynamics). Parameters
  off the sphere are simply retracted to it.

  Args:
    radius: ``rho > 0``.
    tangent: project ``u`` to the tangent space at ``theta`` before retracting.

  Returns:
    A stateless ``GradientTransformation`` whose ``update`` needs ``params``.
  """
  with checks.owner('project_to_sphere'):
    _check('radius', radius, lambda v: v > 0 and math.isfinite(v), 'positive and finite')

  def update_fn(updates, state, params=None):
    if params is None:
      raise ValueError('project_to_sphere needs params')
    if jax.tree.structure(updates) != jax.tree.structure(params):
      raise ValueError(f'project_to_sphere: the updates tree {jax.tree.structure(updates)} does not match '
                       f'the params tree {jax.tree.structure(params)}')
    dtype = jnp.result_type(jnp.float32, *jax.tree.leaves(params))
    if tangent:
      radial = _vdot(updates, params, dtype) / _sq_norm(params, dtype)
      updates = jax.tree.map(lambda u, p: u.astype(dtype) - radial * p.astype(dtype), updates, params)
    moved = jax.tree.map(lambda p, u: p.astype(dtype) + u.astype(dtype), params, updates)
    scale = radius * jax.lax.rsqrt(_sq_norm(moved, dtype))
    return jax.tree.map(lambda m, p: (scale * m - p.astype(dtype)).astype(p.dtype), moved, params), state

  return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


def sgld(learning_rate: optax.ScalarOrSchedule, beta: float = 1.0, seed: int = 0,
         sphere_radius: float | None = None) -> optax.GradientTransformation:
  """Stochastic gradient Langevin dynamics, optionally on a sphere.

  ``theta_{t+1} = theta_t - eta_t g_t + sqrt(2 eta_t / beta) xi_t`` (Welling & Teh 2011); with
  ``sphere_radius = rho`` the step is projected to the tangent space and retracted to ``||theta|| = rho``
  (spherical Langevin, Wei, Damian & Lee, arXiv 2603.06028: ``eta = h eps``, ``beta = 2 eps``).

  There is no ``scale_by_sgld``: the noise lives in the scaled step (its size is ``sqrt(eta)``, not
  ``eta``), so the chain is ``scale_by_learning_rate``, then :func:`add_langevin_noise`, then
  :func:`project_to_sphere`.

  Args:
    learning_rate: ``eta`` or a schedule.
    beta: inverse temperature (stationary law ``exp(-beta L)``); ``math.inf`` is plain SGD.
    seed: PRNG seed of the noise (step ``t`` uses ``fold_in(key(seed), t)``).
    sphere_radius: ``None`` for Euclidean SGLD, else the radius of the sphere.

  Returns:
    A ``GradientTransformation``.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> tx = sgld(0.01, beta=2.0, sphere_radius=1.0)
    >>> theta = jnp.array([1.0, 0.0, 0.0])
    >>> u, _ = tx.update(jnp.array([0.0, 1.0, 0.0]), tx.init(theta), theta)
    >>> round(float(jnp.linalg.norm(theta + u)), 5)
    1.0
  """
  with checks.owner('sgld'):
    parts = [optax.scale_by_learning_rate(learning_rate), add_langevin_noise(learning_rate, beta, seed)]
    if sphere_radius is not None:
      parts.append(project_to_sphere(sphere_radius))
    return optax.chain(*parts)
