"""Consensus-based optimization (CBO), written once per particle on a named axis.

Each particle ``X^i`` (any pytree) knows only its own position and the objective ``f``; the particles meet through
the consensus point, a softmax-weighted mean computed with collectives (``lax.pmax``, ``lax.psum``) over
``axis_name``. The same per-particle step therefore runs for N particles under ``jax.vmap(..., axis_name=...)`` on
one device or split over devices with ``jax.shard_map`` (:func:`optim.consensus.run_ensemble` does both).

The dynamics (Pinnau, Totzeck, Tse & Martin 2017; Carrillo et al. 2021), Euler-Maruyama with step ``dt``:

    v_alpha   = sum_i X^i w_i / sum_i w_i,              w_i = exp(-alpha f(X^i))        (Laplace principle)
    X^i      <- X^i - lam dt (X^i - v_alpha) - lam_grad dt grad f(X^i) + sigma sqrt(dt) D(X^i - v_alpha) xi^i
    isotropic:   D(y) xi = ||y||_2 xi       anisotropic:   D(y) xi = y * xi      (xi^i ~ N(0, I), per particle)

``lam_grad > 0`` adds the gradient drift of the gradient-informed CBO (Riedl, arXiv 2211.12184, its ``lambda_3``
term without the memory term). Riedl, Klock, Geldhauser & Fornasier (arXiv 2306.09778) read plain CBO as a
stochastic relaxation of gradient descent: as alpha grows the consensus point of particles spread around a point
approaches a proximal (implicit gradient) step from it, so the consensus drift follows ``-grad f`` without a single
gradient evaluation (``experiments/cbo.py`` measures that alignment).

Conventions (those of the reference package CBXpy 1.0.4, ``cbx.dynamics.CBO``, checked to 1e-10 against a stored
trajectory in ``tests/optim/consensus``): the weights are a softmax over the particles (log-sum-exp, so large
alpha does not overflow); the energies that weigh the consensus are those of the positions before the step; the
isotropic noise uses the norm over the whole particle (all leaves); ``sigma`` multiplies ``sqrt(dt)``. CBXpy's
``optimize()`` by default multiplies alpha by 1.05 after every step up to 1e5; here alpha is fixed unless
``alpha_growth`` (and ``alpha_max``) say otherwise, one argument away.

Randomness: particle ``i`` at step ``t`` draws from ``fold_in(fold_in(key, t), i)`` with ``i`` its index on the
axis, so vmap and shard_map give the same numbers.

>>> import jax, jax.numpy as jnp
>>> f = lambda x: jnp.sum(x ** 2)
>>> dyn = cbo(f, alpha=10.0, sigma=0.0, dt=0.1)
>>> x = jnp.array([[1.0], [2.0], [-1.0]])
>>> step = jax.vmap(lambda s: dyn.step(s, jax.random.key(0), axis_name='particles')[0], axis_name='particles')
>>> state = step(jax.vmap(dyn.init)(x))
>>> state.x.shape, int(state.count[0])
((3, 1), 1)
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import optax
import numpy as np
from jax import lax

from optim.trees import gaussian_like

PyTree = Any
AxisName = str | Sequence[str]
NOISES = ('isotropic', 'anisotropic', 'none')


class CBOState(NamedTuple):
  """One particle: its position, the (shared) current alpha and the number of steps taken."""

  x: PyTree
  alpha: jax.Array
  count: jax.Array  # int32


class CBOInfo(NamedTuple):
  """What one step saw: the consensus point and this particle's energy, both at the positions before the step."""

  consensus: PyTree
  energy: jax.Array


class ParticleDynamics(NamedTuple):
  """A particle method: ``init(x) -> state`` for one particle; ``step(state, key, *, axis_name) -> (state, info)``
  for one particle, meeting the others through collectives on ``axis_name``."""

  init: Callable[[PyTree], CBOState]
  step: Callable[..., tuple[CBOState, CBOInfo]]


def _check(name: str, value: Any, ok: Callable[[float], bool], expected: str) -> None:
  if isinstance(value, jax.core.Tracer):
    return
  v = float(np.asarray(value))
  if not (math.isfinite(v) and ok(v)):
    raise ValueError(f'cbo: {name} must be {expected}, got {value!r}')


def particle_index(axis_name: AxisName) -> jax.Array:
  """This particle's index on ``axis_name`` (a name or a tuple of names, major to minor)."""
  return lax.axis_index(tuple(axis_name) if not isinstance(axis_name, str) else axis_name)


def consensus_point(x: PyTree, energy: jax.Array, alpha: jax.Array, axis_name: AxisName) -> PyTree:
  """``v_alpha = sum_i x_i exp(-alpha f_i) / sum_i exp(-alpha f_i)`` over the particles on ``axis_name``.

  Computed as a softmax: the largest log-weight (``pmax``) is subtracted before exponentiating, so the result is
  finite for any alpha. Every particle gets the same point.
  """
  axis = tuple(axis_name) if not isinstance(axis_name, str) else axis_name
  logw = -alpha * energy
  w = jnp.exp(logw - lax.pmax(logw, axis))
  total = lax.psum(w, axis)
  return jax.tree.map(lambda leaf: lax.psum(w.astype(leaf.dtype) * leaf, axis) / total.astype(leaf.dtype), x)


def cbo(f: Callable[[PyTree], jax.Array], *, alpha: float = 1.0, lam: float = 1.0, sigma: float = 5.1,
        dt: float = 0.01, noise: str = 'isotropic', lam_grad: float = 0.0, alpha_growth: float = 1.0,
        alpha_max: float = 1e5) -> ParticleDynamics:
  """Consensus-based optimization of ``f`` (arXiv 2306.09778 for its reading as relaxed gradient descent).

  One step for particle ``i`` (its energies and the consensus taken at the positions before the step):

      X^i <- X^i - lam dt (X^i - v_alpha) - lam_grad dt grad f(X^i) + sigma sqrt(dt) D(X^i - v_alpha) xi^i,
      alpha <- min(alpha_growth * alpha, alpha_max).

  Args:
    f: the objective of one particle, ``x -> scalar`` (no batching: the axis does that).
    alpha: the inverse temperature of the weights ``exp(-alpha f)`` (its initial value with ``alpha_growth``).
    lam: drift rate towards the consensus point.
    sigma: noise strength.
    dt: time step.
    noise: ``'isotropic'`` (``||X - v||_2 xi``), ``'anisotropic'`` (``(X - v) * xi``) or ``'none'``.
    lam_grad: weight of the gradient drift ``-grad f(X^i)`` (0: derivative-free CBO; Riedl, arXiv 2211.12184).
    alpha_growth: alpha is multiplied by this after each step (1: fixed; CBXpy's default scheduler is 1.05).
    alpha_max: cap of the growing alpha (CBXpy: 1e5).

  Returns:
    A :class:`ParticleDynamics`; ``step(state, key, axis_name='particles')`` is called once per particle under a
    map that names the particle axis (see :func:`optim.consensus.run_ensemble`). The defaults are CBXpy's
    (``alpha=1, lam=1, sigma=5.1, dt=0.01``, isotropic).
  """
  for name, value in (('alpha', alpha), ('lam', lam), ('sigma', sigma), ('lam_grad', lam_grad),
                      ('alpha_max', alpha_max)):
    _check(name, value, lambda v: v >= 0, 'finite and >= 0')
  _check('dt', dt, lambda v: v > 0, 'finite and > 0')
  _check('alpha_growth', alpha_growth, lambda v: v > 0, 'finite and > 0')
  if noise not in NOISES:
    raise ValueError(f'cbo: noise must be one of {NOISES}, got {noise!r}')
  value_and_grad = jax.value_and_grad(f)

  def init(x: PyTree) -> CBOState:
    dtype = jnp.result_type(*jax.tree.leaves(x))
    return CBOState(x, jnp.asarray(alpha, dtype), jnp.zeros([], jnp.int32))

  def step(state: CBOState, key: jax.Array, *, axis_name: AxisName = 'particles') -> tuple[CBOState, CBOInfo]:
    x = state.x
    if lam_grad:
      energy, grad = value_and_grad(x)
    else:
      energy, grad = f(x), None
    consensus = consensus_point(x, energy, state.alpha, axis_name)
    drift = jax.tree.map(lambda a, c: a - c, x, consensus)
    move = jax.tree.map(lambda d: -lam * dt * d, drift)
    if grad is not None:
      move = jax.tree.map(lambda m, g: m - lam_grad * dt * g, move, grad)
    if noise != 'none' and sigma:
      xi = gaussian_like(jax.random.fold_in(jax.random.fold_in(key, state.count), particle_index(axis_name)), x)
      scale = sigma * math.sqrt(dt)
      if noise == 'isotropic':
        norm = optax.global_norm(drift)
        move = jax.tree.map(lambda m, z: m + scale * norm * z, move, xi)
      else:
        move = jax.tree.map(lambda m, d, z: m + scale * d * z, move, drift, xi)
    new_x = jax.tree.map(lambda a, m: (a + m).astype(a.dtype), x, move)
    new_alpha = jnp.minimum(state.alpha * alpha_growth, alpha_max).astype(state.alpha.dtype)
    return CBOState(new_x, new_alpha, state.count + 1), CBOInfo(consensus, energy)

  return ParticleDynamics(init, step)
