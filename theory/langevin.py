"""Langevin dynamics with iterate averaging recovers a planted direction at the smoothing rate.

Wei, Damian & Lee, "Improved high-dimensional estimation with Langevin dynamics and stochastic weight
averaging", arXiv 2603.06028 (no official code found). Spherical Langevin dynamics on ``S^{d-1}``,

    d theta = eps b(theta) dt + P_theta dW,    b = -grad L_n,

is run as :func:`optim.sgld` with ``sphere_radius=1`` (learning rate ``h eps``, ``beta = 2 eps``, time step
``h``); its stationary law is ``exp(-2 eps L_n)`` on the sphere. The estimates are the last iterate, the
uniform average ``theta_bar`` (odd ``k``: ``theta_bar / ||theta_bar||``) and the top eigenvector of the
second-moment average (even ``k``), kept by :func:`optim.tail_average`.

Problems (``k`` in {3, 4}; ``theta*`` uniform on the sphere):

* tensor PCA ``L_n(theta) = -<T, theta^{(x)k}>`` with ``T = theta*^{(x)k} + Z / sqrt(n)``, ``Z`` the
  symmetrisation of an i.i.d. ``N(0, 1)`` tensor (only its symmetric part enters ``L_n``);
* single-index ``y_i = h_k(<theta*, x_i>)``, ``x_i ~ N(0, I_d)``, ``h_k = He_k / sqrt(k!)``, with the
  correlation loss ``L_n(theta) = -(1/n) sum_i y_i h_k(<theta, x_i>)``.

**Oracle.** To first order in ``eps`` the stationary mean is ``E_pi[theta] = 2 eps Cov_mu(theta, -L_n)`` and
the second moment ``E_pi[theta theta^T] = I/d + 2 eps Cov_mu(theta theta^T, -L_n)`` under the uniform law
``mu`` (``E_mu[z_a z_b z_c z_e] = (d_ab d_ce + d_ac d_be + d_ae d_bc) / (d (d + 2))``). These are closed
forms, the *partial traces* (:func:`oracle`):

* tensor, k = 3: ``ptr(T)_j = sum_i T_iij``; k = 4: ``P = sum_c T_cc..`` (top eigenvector);
* single-index, k = 3: ``(1/n) sum_i y_i (||x_i||^2 - d - 2) x_i``; k = 4:
  ``(1/n) sum_i y_i (||x_i||^2 - d - 4) x_i x_i^T`` (top eigenvector; exact up to a multiple of ``I``, as is
  the tensor k = 4 one).

Their signal is ``theta*`` (or ``theta* theta*^T``) and their noise ``~ d / sqrt(n)``, so their overlap with
``theta*`` is a function of ``n / d^2`` for both k = 3 (``d^{ceil(k/2)}``; the abstract's ``d^{k/2}`` is
``d^{1.5}``) and k = 4 (``d^{k/2} = d^2``). The time average approaches the stationary mean, whose direction
is the oracle up to ``O(eps)``; the last iterate stays at the equator (overlap ``~ d^{-1/2}``).

Batch size and counting: the full empirical loss every step (no minibatches); ``n`` counts tensor samples
(``T`` is the mean of ``n`` noisy copies) or single-index samples; the average keeps every iterate after a
burn-in of ``burn_in`` steps.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

import optim


def _float64(fn):
  @functools.wraps(fn)
  def wrapper(*args, **kwargs):
    with jax.enable_x64(True):
      return fn(*args, **kwargs)
  return wrapper


def _check_k(k: int) -> None:
  if k not in (3, 4):
    raise ValueError(f'k must be 3 or 4, got {k!r}')


def _hermite(k: int, t):
  """Normalised Hermite polynomials ``He_k / sqrt(k!)``."""
  if k == 3:
    return (t ** 3 - 3 * t) / math.sqrt(6)
  return (t ** 4 - 6 * t ** 2 + 3) / math.sqrt(24)


def _unit(key, d):
  v = jax.random.normal(key, (d,))
  return v / jnp.linalg.norm(v)


def _symmetrise(z: jax.Array) -> jax.Array:
  import itertools
  perms = list(itertools.permutations(range(z.ndim)))
  return sum(jnp.transpose(z, p) for p in perms) / len(perms)


def tensor_problem(key: jax.Array, d: int, n: float, k: int) -> dict[str, jax.Array]:
  """``T = theta*^{(x)k} + sym(Z) / sqrt(n)`` and ``theta*`` (float64 under ``jax.enable_x64``)."""
  _check_k(k)
  k_star, k_noise = jax.random.split(key)
  star = _unit(k_star, d)
  signal = functools.reduce(jnp.multiply.outer, [star] * k)
  return {'theta_star': star, 'T': signal + _symmetrise(jax.random.normal(k_noise, (d,) * k)) / jnp.sqrt(n)}


def single_index_problem(key: jax.Array, d: int, n: int, k: int) -> dict[str, jax.Array]:
  """``x_i ~ N(0, I_d)``, ``y_i = h_k(<theta*, x_i>)`` and ``theta*``."""
  _check_k(k)
  k_star, k_x = jax.random.split(key)
  star = _unit(k_star, d)
  x = jax.random.normal(k_x, (int(n), d))
  return {'theta_star': star, 'x': x, 'y': _hermite(k, x @ star)}


def loss_fn(problem: dict[str, jax.Array], k: int):
  """``theta -> L_n(theta)`` for a tensor (``'T'``) or single-index (``'x', 'y'``) problem."""
  if 'T' in problem:
    t = problem['T']
    return lambda theta: -functools.reduce(lambda acc, _: acc @ theta, range(k - 1), t) @ theta
  x, y = problem['x'], problem['y']
  return lambda theta: -jnp.mean(y * _hermite(k, x @ theta))


def oracle(problem: dict[str, jax.Array], k: int) -> jax.Array:
  """The closed-form partial-trace estimate the average approaches: a vector (k = 3) or a matrix (k = 4)."""
  _check_k(k)
  if 'T' in problem:
    t = problem['T']
    return jnp.einsum('iij->j', t) if k == 3 else jnp.einsum('ccab->ab', t)
  x, y = problem['x'], problem['y']
  d = x.shape[1]
  # E_mu[z h_3(z.x)] ~ (|x|^2 - d - 2) x and the traceless part of E_mu[z z^T h_4(z.x)] ~ (|x|^2 - d - 4) x x^T.
  c = y * (jnp.sum(x * x, axis=1) - d - 2 * (k - 2))
  return x.T @ c / x.shape[0] if k == 3 else (x.T * c) @ x / x.shape[0]


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
    ``last``, ``average`` (the estimate), ``oracle_cosine`` (|cos| between the average's estimate and the
    oracle's), their overlaps with ``theta*``, and with ``record_every`` the traces ``trace_last``,
    ``trace_average`` (overlaps over time).
  """
  _check_k(k)
  loss = loss_fn(problem, k)
  star = problem['theta_star']
  d = star.shape[0]
  tx = optax.chain(optim.sgld(h * eps, beta=2 * eps, seed=seed, sphere_radius=1.0),
                   optim.tail_average(start=burn_in, second_moment=(k % 2 == 0)))
  theta0 = _unit(jax.random.fold_in(jax.random.key(seed), 1 << 20), d)
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


def oracle_overlap(key: jax.Array, d: int, n: float, k: int, model: str = 'tensor') -> jax.Array:
  """Overlap of the closed-form oracle with ``theta*`` for one draw (cheap: no dynamics)."""
  make = tensor_problem if model == 'tensor' else single_index_problem
  problem = make(key, d, n, k)
  orc = oracle(problem, k)
  return overlap(estimate(orc, None, k) if k % 2 else estimate(None, orc, k), problem['theta_star'], k)


@_float64
def sweep(k: int, model: str = 'tensor', dims: Sequence[int] = (8, 12, 16, 24), ratios: Sequence[float] = (
    0.1, 0.3, 1, 3, 10, 30), seeds: int = 4, eps_scale: float = 0.25, h_scale: float = 0.5,
          time_scale: float = 50.0) -> dict[str, Any]:
  """Overlap of the last iterate, the averaged iterate and the oracle against ``n = ratio * d^2``.

  ``eps = eps_scale * d``, ``h = h_scale / d``, run for time ``time_scale * d`` (``time_scale * d^2 /
  h_scale`` steps), half of it burn-in; the seeds run under ``vmap``. The theory asks for ``T >~ d^k / eps^2 = d^{k-2} / eps_scale^2``.

  Returns:
    Arrays ``[len(dims), len(ratios), seeds]`` of overlaps (``last``, ``average``, ``oracle``,
    ``oracle_cosine``), with ``dims``, ``ratios`` and ``n``.
  """
  _check_k(k)
  dims, ratios = list(dims), list(ratios)
  res = {name: np.zeros((len(dims), len(ratios), seeds)) for name in ('last', 'average', 'oracle',
                                                                      'oracle_cosine')}
  make = tensor_problem if model == 'tensor' else single_index_problem
  for i, d in enumerate(dims):
    steps = int(time_scale * d * d / h_scale)
    for j, ratio in enumerate(ratios):
      n = ratio * d * d
      run = jax.jit(jax.vmap(lambda s: run_langevin(
          make(jax.random.fold_in(jax.random.key(1000 * i + 10 * j), s), d, n, k), k, eps=eps_scale * d,
          h=h_scale / d, steps=steps, burn_in=steps // 2, seed=s)))
      out = run(jnp.arange(seeds))
      for name in res:
        res[name][i, j] = np.asarray(out[name])
  res.update(dims=np.array(dims), ratios=np.array(ratios),
             n=np.array([[r * d * d for r in ratios] for d in dims]), k=k, model=model)
  return res


@_float64
def oracle_sweep(k: int, model: str = 'tensor', dims: Sequence[int] = (8, 16, 32, 64),
                 ratios: Sequence[float] = tuple(np.geomspace(0.03, 100, 15)), seeds: int = 16) -> dict[str, Any]:
  """The oracle's overlap against ``n = ratio * d^2`` (many seeds, no dynamics): the threshold law."""
  res = np.zeros((len(dims), len(ratios), seeds))
  for i, d in enumerate(dims):
    if model == 'tensor':  # n only scales the noise: one compilation per d
      f = jax.jit(jax.vmap(lambda key, n: oracle_overlap(key, d, n, k, model), in_axes=(0, None)))
    for j, ratio in enumerate(ratios):
      if model != 'tensor':  # n is a shape
        f = jax.jit(jax.vmap(lambda key, n: oracle_overlap(key, d, n, k, model), in_axes=(0, None)),
                    static_argnums=1)
      keys = jax.vmap(lambda s: jax.random.key(7919 * i + 31 * j + s))(jnp.arange(seeds))
      res[i, j] = np.asarray(f(keys, int(ratio * d * d) if model != 'tensor' else ratio * d * d))
  return {'oracle': res, 'dims': np.array(dims), 'ratios': np.array(ratios),
          'n': np.array([[r * d * d for r in ratios] for d in dims]), 'k': k, 'model': model}


def threshold_exponent(result: dict[str, Any], name: str = 'oracle', level: float = 0.5) -> dict[str, Any]:
  """Fits ``log n*(d) = a + p log d``, with ``n*`` where the median overlap crosses ``level``.

  ``n*`` is interpolated in ``log n`` between the grid points around the first crossing.
  """
  med = np.median(result[name], axis=-1)
  n = result['n']
  n_star = []
  for i in range(med.shape[0]):
    above = np.nonzero(med[i] >= level)[0]
    j = above[0] if above.size else None
    if j is None or j == 0:
      n_star.append(np.nan)
      continue
    t = (level - med[i, j - 1]) / (med[i, j] - med[i, j - 1])
    n_star.append(math.exp((1 - t) * math.log(n[i, j - 1]) + t * math.log(n[i, j])))
  n_star = np.array(n_star)
  ok = np.isfinite(n_star)
  slope = float(np.polyfit(np.log(result['dims'][ok]), np.log(n_star[ok]), 1)[0]) if ok.sum() >= 2 else np.nan
  return {'n_star': n_star, 'exponent': slope, 'level': level}


@_float64
def time_trace(k: int, model: str = 'tensor', d: int = 16, ratio: float = 10.0, eps_scale: float = 0.25,
               h_scale: float = 0.5, time_scale: float = 50.0, records: int = 100, seed: int = 0
               ) -> dict[str, np.ndarray]:
  """Running overlaps of the last iterate and of the running average (no burn-in) over time."""
  make = tensor_problem if model == 'tensor' else single_index_problem
  steps = int(time_scale * d * d / h_scale)
  every = max(1, steps // records)
  out = run_langevin(make(jax.random.key(seed), d, ratio * d * d, k), k, eps=eps_scale * d, h=h_scale / d,
                     steps=every * records, record_every=every, seed=seed)
  return {name: np.asarray(v) for name, v in out.items()} | {'d': d, 'k': k, 'model': model,
                                                              'time': np.asarray(out['trace_steps']) * h_scale / d}


# Plots.

def plot_collapse(result: dict[str, Any], name: str = 'average', axes=None):
  """Median overlap against ``n / d^{k/2}`` and ``n / d^{ceil(k/2)}``, one curve per ``d``."""
  import matplotlib.pyplot as plt
  k = result['k']
  axes = axes if axes is not None else plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)[1]
  med = np.median(result[name], axis=-1)
  for ax, power, label in ((axes[0], k / 2, f'n / d^{k / 2:g}'), (axes[1], math.ceil(k / 2),
                                                                  f'n / d^{math.ceil(k / 2)}')):
    for i, d in enumerate(result['dims']):
      ax.semilogx(result['n'][i] / d ** power, med[i], 'o-', ms=3, label=f'd = {d}')
    ax.set(xlabel=label, title=f"{result['model']} k={k}: {name}")
  axes[0].set_ylabel('overlap with $\\theta^*$')
  axes[0].legend(fontsize=7)
  return axes


def plot_trace(trace: dict[str, np.ndarray], ax=None):
  """Overlap of the last iterate and of the running average against time."""
  import matplotlib.pyplot as plt
  ax = ax or plt.subplots(figsize=(5, 3.5))[1]
  ax.plot(trace['time'], trace['trace_last'], lw=0.8, label='last iterate')
  ax.plot(trace['time'], trace['trace_average'], lw=1.5, label='averaged iterate')
  ax.axhline(trace['d'] ** -0.5, color='0.5', ls=':', label='$d^{-1/2}$')
  ax.axhline(float(trace['oracle']), color='k', ls='--', lw=0.8, label='oracle')
  ax.set(xlabel='time $t$', ylabel='overlap', title=f"{trace['model']} k={trace['k']}, d={trace['d']}")
  ax.legend(fontsize=7)
  return ax
