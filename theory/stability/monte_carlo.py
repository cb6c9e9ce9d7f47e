"""Monte Carlo of linearised SGD from the top eigen-direction of ``T``, against the exact ``rho(T)^t``."""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from theory.numerics import float64
from theory.stability.second_moment import as_grads, second_moment_operator


@functools.partial(jax.jit, static_argnames=('batch_size', 'num_chains', 'num_steps'))
def _simulate(grads, theta0, key, learning_rate, batch_size, num_chains, num_steps):
  n = grads.shape[0]

  def chain(theta, k):
    def step(theta, t):
      # A uniform batch without replacement: the first B of a uniformly random permutation.
      idx = jnp.argsort(jax.random.uniform(jax.random.fold_in(k, t), (n,)))[:batch_size]
      gb = grads[idx]
      theta = theta - learning_rate * gb.T @ (gb @ theta) / batch_size
      return theta, jnp.sum(theta ** 2)

    _, sq = jax.lax.scan(step, theta, jnp.arange(num_steps))
    return jnp.concatenate([jnp.sum(theta ** 2)[None], sq])

  return jax.vmap(chain)(theta0, jax.random.split(key, num_chains))  # (chains, steps + 1)


@float64
def simulate_linear_sgd(grads, learning_rate: float, batch_size: int, seed: int = 0, num_chains: int = 8192,
                        num_steps: int = 100, growth_cap: float = 20.0) -> dict[str, Any]:
  """Monte Carlo of linearised SGD started in the top eigen-direction of ``T``.

  ``theta_0 ~ N(0, V)`` with ``V`` the PSD top eigenmatrix of ``T`` (``tr V = 1``), so that
  ``E ||theta_t||^2 = rho(T)^t`` exactly, with no transient: the measured mean can be compared with it at every
  ``t`` (``stderr`` is the Monte Carlo standard error over chains).

  Caveat, measured: above ``eta*`` the mean square is carried by rare chains (products of random matrices are
  heavy-tailed), so a sample mean over ``N`` chains falls below ``rho^t`` once ``rho^t`` is large; the median
  chain may even decay while the mean grows (mean-square instability is not almost-sure divergence). Runs with
  ``rho > 1`` therefore stop once ``rho^t`` reaches ``growth_cap``; with equal per-sample norms and ``B = 1`` the
  per-step growth of ``||theta||^2`` is bounded and the mean is accurate over long horizons.

  Args:
    grads: per-sample gradients ``(n, d)``.
    learning_rate: ``eta``.
    batch_size: ``B`` (without replacement, a fresh batch every step).
    seed: integer seed.
    num_chains: independent chains.
    num_steps: steps per chain.

  Returns:
    ``{'steps', 'mean_sq', 'stderr', 'predicted' (rho^t), 'rho', 'fitted_log_rate', 'learning_rate',
    'batch_size', 'median_sq'}``; ``fitted_log_rate`` is the least-squares slope of ``log mean_sq`` in ``t``.
  """
  g = as_grads(grads)
  d = g.shape[1]
  eig, vec = np.linalg.eigh(second_moment_operator(g, learning_rate, batch_size))
  rho = float(eig[-1])
  v = vec[:, -1].reshape(d, d)
  v = 0.5 * (v + v.T)
  v = v / np.trace(v)
  w, q = np.linalg.eigh(v)
  root = q * np.sqrt(np.clip(w, 0.0, None))  # V^{1/2}; V is PSD up to rounding (Perron vector of T)
  if rho > 1.0:
    num_steps = int(min(num_steps, max(5, math.ceil(math.log(growth_cap) / math.log(rho)))))
  key0, key1 = jax.random.split(jax.random.key(seed))
  theta0 = jax.random.normal(key0, (num_chains, d)) @ jnp.asarray(root).T
  sq = np.asarray(_simulate(jnp.asarray(g), theta0, key1, learning_rate, batch_size, num_chains, num_steps))
  sq = sq / np.mean(sq[:, 0])  # normalise by the sample tr(V) to remove the start's sampling error
  steps = np.arange(num_steps + 1)
  mean = sq.mean(0)
  return {'steps': steps, 'mean_sq': mean, 'stderr': sq.std(0) / math.sqrt(num_chains),
          'predicted': rho ** steps, 'rho': rho, 'fitted_log_rate': float(np.polyfit(steps, np.log(mean), 1)[0]),
          'learning_rate': learning_rate, 'batch_size': batch_size, 'median_sq': np.median(sq, axis=0)}
