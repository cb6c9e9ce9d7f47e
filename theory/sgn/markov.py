"""The entropy-regularised two-player Markov game under the Fisher metric, with natural policy gradient."""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from scipy.linalg import block_diag

from theory.numerics import float64
from theory.sgn.bounds import block_bounds, two_player_band, two_player_margin
from theory.sgn.contraction import euler_step_bound, metric, metric_constants, stability_threshold
from theory.sgn.linalg import sqrt_pair


# P[s, a1, a2, s'] and the shared reward r[s, a1, a2] of the paper's 2-state, 2-action coordination game:
# matching actions (0,0) / (1,1) move to state 0 / 1 with probability 0.9 and pay +1; mismatches move
# uniformly and pay -1 (markov/env.py of the official code).
_P = np.zeros((2, 2, 2, 2))
for _s in range(2):
  _P[_s, 0, 0] = (0.9, 0.1)
  _P[_s, 1, 1] = (0.1, 0.9)
  _P[_s, 0, 1] = _P[_s, 1, 0] = (0.5, 0.5)
_R = np.array([[[1.0, -1.0], [-1.0, 1.0]]] * 2)


def _markov_losses(theta, gamma, tau, reward_scale):
  """``(f_1, f_2)`` with ``f_i = -(sum d(s, a) r(s, a) + tau sum_s H(pi_i(.|s)))`` (unweighted entropy)."""
  pi1 = jax.nn.softmax(theta[:4].reshape(2, 2), axis=1)
  pi2 = jax.nn.softmax(theta[4:].reshape(2, 2), axis=1)
  joint = jnp.einsum('si,sj->sij', pi1, pi2)
  p_pi = jnp.einsum('sij,sijk->sk', joint, _P)
  start = jnp.array([1.0, 0.0])
  occupancy = jnp.linalg.solve(jnp.eye(2) - gamma * p_pi.T, (1 - gamma) * start)
  ret = jnp.sum(occupancy[:, None, None] * joint * reward_scale * _R)
  ent = lambda pi: -jnp.sum(pi * jnp.log(pi))
  return -(ret + tau * ent(pi1)), -(ret + tau * ent(pi2))


# Softmax logits are defined up to a constant per state; the gauge-free coordinates are the logit
# differences: theta_i = B z_i with the orthonormal B = blockdiag((1, -1) / sqrt 2) per state.
_B = np.kron(np.eye(2), np.array([[1.0], [-1.0]]) / math.sqrt(2))  # 4 x 2


def _lift(z):
  return jnp.concatenate([_B @ z[:2], _B @ z[2:]])


def _markov_field(z, args):
  """The pseudo-gradient in gauge-free coordinates ``z`` (4-dim: 2 per player)."""
  theta = _lift(z)
  g1 = jax.grad(lambda t: _markov_losses(t, *args)[0])(theta)[:4]
  g2 = jax.grad(lambda t: _markov_losses(t, *args)[1])(theta)[4:]
  return jnp.concatenate([_B.T @ g1, _B.T @ g2])


def _markov_fishers(z):
  theta = _lift(z)
  out = []
  for i in range(2):
    pi = jax.nn.softmax(theta[4 * i:4 * i + 4].reshape(2, 2), axis=1)
    out.append(_B.T @ jax.scipy.linalg.block_diag(*[jnp.diag(p) - jnp.outer(p, p) for p in pi]) @ _B)
  return jnp.stack(out)


@functools.partial(jax.jit, static_argnums=1)
def _markov_geometry(z, args):
  """Jacobian of the pseudo-gradient and the two Fisher blocks at ``z``."""
  return jax.jacfwd(_markov_field)(z, args), _markov_fishers(z)


@functools.partial(jax.jit, static_argnums=(3, 4))
def _npg_runs(z0, eta, z_star, args, steps):
  """Natural policy gradient ``z_i <- z_i - eta F_i^{-1} grad_i f_i`` from each row of ``z0``.

  Returns ``(strict, official)``: *strict*, the run ends within ``1e-8`` of this equilibrium ``z_star``
  (the game has other equilibria, which large steps can reach); *official*, the official code's criterion,
  ``||F|| < 1e-6`` at some step or ending within distance 1 of ``z_star``.
  """
  def run(z):
    def step(carry, _):
      zz, done = carry
      g = _markov_field(zz, args)
      fishers = _markov_fishers(zz)
      delta = jnp.concatenate([jnp.linalg.solve(fishers[0], g[:2]), jnp.linalg.solve(fishers[1], g[2:])])
      done = done | (jnp.linalg.norm(g) < 1e-6)
      new = zz - eta * delta
      new = jnp.where(jnp.all(jnp.isfinite(new)) & (jnp.linalg.norm(new) < 1e3), new, jnp.full_like(zz, 1e3))
      return (new, done), None

    (zz, done), _ = jax.lax.scan(step, (z, jnp.array(False)), None, length=steps)
    dist = jnp.linalg.norm(_lift(zz) - _lift(z_star))
    return dist < 1e-8, done | (dist < 1.0)

  return jax.vmap(run)(z0)


@float64
def markov_game(gamma: float = 0.9, tau: float = 1.0, reward_scale: float = 1.0, radius: float = 0.1,
                ratios: Sequence[float] = tuple(np.logspace(-2, 2, 200)),
                multipliers: Sequence[float] = tuple(np.logspace(-1, 1, 20)), num_seeds: int = 20,
                steps: int = 2000, seed: int = 42) -> dict[str, Any]:
  """SGN in the Fisher metric for natural policy gradient on the 2-player, 2-state Markov game.

  Conventions of the official code (``markov/``), except where noted:

  * Nash equilibrium by minimising ``||F||`` (here Newton's method on ``F = 0`` instead of Adam).
  * Region: the ``2^8`` vertices of the logit cube ``||theta - theta*||_inf <= radius``.
  * Fisher-normalised ``mu_i = lambda_min(F_i^{-1/2} H_ii F_i^{-1/2})``,
    ``L_ij = ||F_i^{-1/2} H_ij F_j^{-1/2}||_2``, min / max over the region. The official code removes the
    softmax gauge (a constant added to a state's logits) by ignoring zero eigenvalues and adding ``1e-3 I``
    to the Fisher; here the gauge is quotiented out exactly (logit differences ``z``), without the ``1e-3``.
  * ``beta = max ||M^{1/2} F^{-1} J M^{-1/2}||_2`` with ``M = diag(w_1 F_1, w_2 F_2)`` at the best ratio of
    the grid ``ratios``; ``eta_max = 2 alpha / beta^2``.
  * NPG from ``theta_0 ~ N(0, 0.01^2)``, ``steps`` steps, ``num_seeds`` seeds. Two criteria: *strict*,
    ending within 1e-8 of ``theta*``; *official*, ``||F|| < 1e-6`` at some step or ending within distance 1
    of ``theta*`` (which also counts runs on a bounded orbit around it, or reaching another equilibrium). The
    empirical limit is the largest ``eta`` (bisection after the multiplier scan) at which every seed converges
    strictly; next to it, the exact
    linear threshold ``eta_lin = min_k 2 Re(l_k) / |l_k|^2`` over the eigenvalues of ``F^{-1} J`` at
    ``theta*``.

  Returns:
    The bounds, ``alpha``, ``beta``, best ratio, ``eta_max``, the band, ``alpha*(r)`` over ``ratios``, the
    convergence probabilities over ``eta / eta_max`` (both criteria), and the empirical and linear limits.
  """
  args = (float(gamma), float(tau), float(reward_scale))
  z = jnp.zeros(4)
  for _ in range(30):  # Newton on F(z) = 0
    z = z - jnp.linalg.solve(_markov_geometry(z, args)[0], _markov_field(z, args))
  theta_star = np.asarray(_lift(z))
  offsets = np.array(list(itertools.product((-radius, radius), repeat=8)))
  zs = np.stack([np.concatenate([_B.T @ (theta_star[:4] + o[:4]), _B.T @ (theta_star[4:] + o[4:])])
                 for o in offsets])
  jacs, fishers = (np.asarray(x) for x in jax.vmap(_markov_geometry, in_axes=(0, None))(jnp.asarray(zs), args))
  mus, couplings = [], []
  for jac, fis in zip(jacs, fishers):
    inv_half = block_diag(*[sqrt_pair(f)[1] for f in fis])
    mu_k, l_k = block_bounds(inv_half @ jac @ inv_half, (2, 2))
    mus.append(mu_k)
    couplings.append(l_k)
  mu, coupling = np.min(mus, axis=0), np.max(couplings, axis=0)
  ratios = np.asarray(ratios, np.float64)
  alphas = two_player_margin(mu, coupling, ratios)
  best = int(np.argmax(alphas))
  alpha, r_best = float(alphas[best]), float(ratios[best])
  w = np.array([1.0, r_best])
  beta = max(metric_constants(jac, metric(w, (2, 2), fis), block_diag(*fis))[1] for jac, fis in zip(jacs, fishers))
  eta_max = euler_step_bound(alpha, beta)
  jac_star, fis_star = (np.asarray(x) for x in _markov_geometry(z, args))
  eta_lin = stability_threshold(np.linalg.solve(block_diag(*fis_star), jac_star), 'euler')
  # NPG moves only the gauge-free part of theta_0 (the gradient is orthogonal to the gauge).
  starts = np.stack([np.random.default_rng(seed + s).normal(scale=0.01, size=8) for s in range(num_seeds)])
  z0 = jnp.asarray(np.stack([np.concatenate([_B.T @ t[:4], _B.T @ t[4:]]) for t in starts]))
  multipliers = np.asarray(multipliers, np.float64)
  runs = [tuple(np.mean(np.asarray(x)) for x in _npg_runs(z0, c * eta_max, z, args, steps)) for c in multipliers]
  strict = np.array([r[0] for r in runs])
  official = np.array([r[1] for r in runs])
  all_ok = lambda eta: bool(np.all(np.asarray(_npg_runs(z0, eta, z, args, steps)[0])))
  if strict[0] < 1:
    eta_emp = 0.0
  else:
    first_bad = int(np.argmax(strict < 1)) if np.any(strict < 1) else len(multipliers) - 1
    lo, hi = multipliers[max(first_bad - 1, 0)] * eta_max, multipliers[first_bad] * eta_max
    for _ in range(20):
      mid = 0.5 * (lo + hi)
      lo, hi = (mid, hi) if all_ok(mid) else (lo, mid)
    eta_emp = lo
  return {
      'theta_star': theta_star, 'mu': mu, 'L': coupling, 'alpha': alpha, 'r_best': r_best, 'beta': beta,
      'eta_max': eta_max, 'band': np.array(two_player_band(mu, coupling)), 'ratios': ratios,
      'alpha_of_r': alphas, 'multipliers': multipliers, 'convergence_strict': strict,
      'convergence_official': official, 'eta_linear': eta_lin, 'eta_empirical': eta_emp,
      'empirical_over_certified': eta_emp / eta_max, 'linear_over_certified': eta_lin / eta_max,
  }
