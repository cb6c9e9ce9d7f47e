"""Dynamical (linear, mean-square) stability of SGD at an interpolating minimum: exact threshold and checks.

Setting (Wu, Ma & E, NeurIPS 2018; Wu & Su, arXiv 2305.17490). Square loss ``L = (1/2n) sum_i (f_i - y_i)^2`` at
an interpolating minimum ``theta*``: the per-sample Hessians are rank one, ``H_i = g_i g_i^T`` with
``g_i = grad_theta f(x_i; theta*)``, and ``H = (1/n) sum_i H_i``. Linearised SGD with batch size ``B``, each batch
drawn uniformly **without replacement** and independently at every step, is

    theta_{t+1} - theta* = (I - eta H_hat_t)(theta_t - theta*),     H_hat_t = (1/B) sum_{i in S_t} H_i.

**Stability notion**: mean-square, ``E ||theta_t - theta*||^2 <= C ||theta_0 - theta*||^2`` for all ``t``. The
second moment ``M_t = E[(theta_t - theta*)(theta_t - theta*)^T]`` evolves by the exact linear operator

    T(eta, B) = (I - eta H) (x) (I - eta H) + eta^2 p_B (E_i[H_i (x) H_i] - H (x) H),   p_B = (n - B)/(B (n - 1)),

(the batch covariance for sampling without replacement; ``p_n = 0`` is GD, ``p_1 = 1``). ``T`` is symmetric and
maps PSD matrices to PSD matrices, so ``rho(T) = lambda_max(T)`` and stability is ``T - I <= 0``, i.e.
``eta K_B <= H (+) H`` with ``K_B = (1 - p_B) H (x) H + p_B E_i[H_i (x) H_i]``. Hence the stable set is the
interval ``[0, eta*(B)]`` with the closed form

    1 / eta*(B) = lambda_max( (H (+) H)^{-1/2} K_B (H (+) H)^{-1/2} )

(on the range of ``H``; the null space of ``H`` is neutral: that component of the iterate never moves). This
is Mulayoff & Michaeli's exact threshold (arXiv 2306.07850), and ``K_B`` is their "mixture" of a full-batch step
(probability ``1 - p_B``) and a single-sample step (probability ``p_B``). Every bound below is the Rayleigh
quotient of this pencil at a test matrix ``M``:

* ``M = u u^T`` (top eigenvector of ``H``): ``eta* <= 2a / ((1 - p) a^2 + p E_i[(u^T g_i)^4]) <= 2 / lambda_max``
  (the GD bound, Wu-Ma-E's necessary condition; equality for GD).
* ``M = I``: ``eta* <= 2 tr(H) / ((1 - p) ||H||_F^2 + p E_i ||g_i||^4)``. For ``B = 1`` (``p = 1``) and Jensen
  (``E||g||^4 >= tr(H)^2``) this is **Wu & Su's ``tr(H) <= 2 / eta``**, with equality iff all ``||g_i||`` are
  equal (Cauchy-Schwarz then shows ``M = I`` is the maximiser). For ``B > 1`` the trace bound only gives
  ``eta* tr(H) <= 2 / (p_B + (1 - p_B) ||H||_F^2 / tr(H)^2) <= 2 / p_B ~ 2B``: the ``2/eta`` statement is the
  ``B = 1`` one.

The nonlinear experiments (:func:`train_to_interpolation`, :func:`nonlinear_experiment`) train diagonal linear
networks ``f = <u * v, x>`` and two-layer ReLU networks ``f = sum_k a_k relu(w_k^T x)`` to interpolation by GD and
SGD, then measure ``lambda_max(H)``, ``tr(H)`` and ``||H||_F`` exactly (dense float64), cross-check them with
``optim``'s Lanczos and Hutchinson estimators, compute the exact ``eta*(B)`` of the minimum found, and the norms
that Wu & Su tie to sharpness: ``tr(H) = ||u||^2 + ||v||^2 >= 2 ||u * v||_1`` for diagonal networks with
``(1/n) sum_i x_ij^2 = 1`` (so SGD-stable means ``||beta||_1 <= 1/eta``), and for ReLU networks with ``||x_i|| = 1``,
``tr(H) = sum_k [q_k + a_k^2 rho_k] >= 2 sum_k |a_k| sqrt(rho_k q_k)`` (``rho_k`` the fraction of points where
unit ``k`` is active, ``q_k = mean_i relu(w_k^T x_i)^2``): a data-weighted path norm, next to the plain
``sum_k |a_k| ||w_k||``.

Everything runs in float64 (``jax.enable_x64``) and returns dicts of NumPy arrays for the ``plot_*`` functions.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
import numpy as np

from optim import curvature
from optim import estimators
from optim import lanczos as lanczos_lib

PyTree = Any


def _float64(fn):
  """Runs ``fn`` with ``jax_enable_x64`` on: every experiment here is a float64 computation."""

  @functools.wraps(fn)
  def wrapper(*args, **kwargs):
    with jax.enable_x64(True):
      return fn(*args, **kwargs)

  return wrapper


def _check_batch(num_points: int, batch_size: int) -> None:
  if num_points < 2:
    raise ValueError(f'need at least 2 samples, got {num_points}')
  if not 1 <= batch_size <= num_points:
    raise ValueError(f'batch_size must be in [1, {num_points}], got {batch_size}')


def noise_factor(num_points: int, batch_size: int) -> float:
  """``p_B = (n - B) / (B (n - 1))``: ``Cov(H_hat) = p_B Cov_i(H_i)`` for batches drawn without replacement.

  Example:
    >>> noise_factor(10, 1), noise_factor(10, 10)
    (1.0, 0.0)
  """
  _check_batch(num_points, batch_size)
  return (num_points - batch_size) / (batch_size * (num_points - 1))


def _as_grads(grads) -> np.ndarray:
  g = np.asarray(grads, np.float64)
  if g.ndim != 2 or not np.all(np.isfinite(g)):
    raise ValueError(f'grads must be a finite (n, d) array of per-sample gradients, got shape {g.shape}')
  return g


def _range(grads: np.ndarray, rtol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
  """Eigenvalues of ``H`` on its range and the gradients in that eigenbasis (``H`` becomes diagonal)."""
  h = grads.T @ grads / grads.shape[0]
  lam, vec = np.linalg.eigh(h)
  keep = lam > rtol * max(lam[-1], 0.0)
  if not np.any(keep):
    raise ValueError('H = 0: all per-sample gradients vanish')
  return lam[keep], grads @ vec[:, keep]


# ------------------------------------------------------------------------------------ exact operator


def rank_one_problem(seed: int, num_points: int, dim: int, equal_norms: bool = False,
                     norm_spread: float = 0.5) -> np.ndarray:
  """Random per-sample gradients ``g_i`` (rows), i.e. rank-one per-sample Hessians ``H_i = g_i g_i^T``.

  Directions are anisotropic Gaussian (coordinate scales ``1 / (1 + j)``, so ``H`` has a spread spectrum); norms
  are all equal to one when ``equal_norms``, else log-normal with standard deviation ``norm_spread``.

  Args:
    seed: integer seed.
    num_points: ``n``.
    dim: ``d``.
    equal_norms: make every ``||g_i|| = 1``.
    norm_spread: log-standard deviation of the norms otherwise.

  Returns:
    float64 array ``(n, d)``.

  Example:
    >>> import numpy as np
    >>> g = rank_one_problem(0, 5, 3, equal_norms=True)
    >>> g.shape, np.allclose(np.linalg.norm(g, axis=1), 1.0)
    ((5, 3), True)
  """
  rng = np.random.default_rng(seed)
  g = rng.normal(size=(num_points, dim)) / (1.0 + np.arange(dim))
  g /= np.linalg.norm(g, axis=1, keepdims=True)
  if not equal_norms:
    g *= np.exp(norm_spread * rng.normal(size=(num_points, 1)))
  return g


def _kron_parts(grads: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  n, d = grads.shape
  h = grads.T @ grads / n
  outer = np.einsum('ia,ib->iab', grads, grads).reshape(n, d * d)  # vec(H_i) = g_i (x) g_i
  return h, np.kron(h, h), outer.T @ outer / n  # H, H (x) H, E_i[H_i (x) H_i]


def second_moment_operator(grads, learning_rate: float, batch_size: int) -> np.ndarray:
  """The exact ``d^2 x d^2`` operator ``T`` with ``vec(M_{t+1}) = T vec(M_t)`` for linearised SGD.

  ``T = (I - eta H) (x) (I - eta H) + eta^2 p_B (E_i[H_i (x) H_i] - H (x) H)`` (module docstring), for
  rank-one ``H_i = g_i g_i^T`` and batches of size ``B`` drawn uniformly without replacement.

  Args:
    grads: per-sample gradients ``(n, d)``.
    learning_rate: ``eta``.
    batch_size: ``B``.

  Returns:
    float64 array ``(d^2, d^2)`` (row-major ``vec``).

  Example:
    >>> import numpy as np
    >>> t = second_moment_operator(np.array([[1.0], [3.0]]), 0.1, 1)   # H = 5, E[H_i^2] = 41
    >>> round(float(t[0, 0]), 6)   # (1 - 0.5)^2 + 0.01 (41 - 25)
    0.41
  """
  g = _as_grads(grads)
  if not (np.isfinite(learning_rate) and learning_rate >= 0):
    raise ValueError(f'learning_rate must be finite and >= 0, got {learning_rate}')
  p = noise_factor(g.shape[0], batch_size)
  h, hh, ehh = _kron_parts(g)
  a = np.eye(h.shape[0]) - learning_rate * h
  return np.kron(a, a) + learning_rate ** 2 * p * (ehh - hh)


def spectral_radius(grads, learning_rate: float, batch_size: int) -> float:
  """``rho(T)``: the per-step growth factor of ``E ||theta_t - theta*||^2`` (stable iff ``<= 1``).

  ``T`` is symmetric and PSD-cone preserving, so ``rho(T) = lambda_max(T)``; the absolute value is taken anyway.

  Example:
    >>> import numpy as np
    >>> round(spectral_radius(np.array([[1.0], [1.0]]), 1.5, 2), 6)   # GD on H = 1: (1 - 1.5)^2
    0.25
  """
  eig = np.linalg.eigvalsh(second_moment_operator(grads, learning_rate, batch_size))
  return float(max(eig[-1], -eig[0]))


def _pencil_top(lam: np.ndarray, g: np.ndarray, p: float) -> float:
  """``lambda_max(diag(c) + V^T V)`` with ``c_ab = (1-p) l_a l_b / (l_a + l_b)``, ``V_i,ab = sqrt(p/n) g_ia g_ib /
  sqrt(l_a + l_b)``: the top of ``(H (+) H)^{-1/2} K_B (H (+) H)^{-1/2}`` in the eigenbasis of ``H``."""
  n = g.shape[0]
  s = lam[:, None] + lam[None, :]
  c = ((1.0 - p) * np.outer(lam, lam) / s).ravel()
  c_max = c.max()
  if p == 0.0:
    return float(c_max)
  v = (np.sqrt(p / n) * np.einsum('ia,ib->iab', g, g) / np.sqrt(s)).reshape(n, -1)
  # Diagonal plus rank n: mu > max(c) is an eigenvalue iff 1 is an eigenvalue of V (mu - C)^{-1} V^T, whose
  # top eigenvalue decreases from +inf (or a finite value) to 0 as mu grows. Bisection on it is exact to
  # rounding and costs n x n eigenvalue problems instead of a d^2 x d^2 one.
  def f(mu):
    return np.linalg.eigvalsh((v / (mu - c)) @ v.T)[-1] - 1.0

  lo = c_max * (1.0 + 1e-15) + 1e-300
  hi = c_max + np.linalg.norm(v, 2) ** 2 * (1.0 + 1e-12) + 1e-300
  if f(lo) <= 0.0:
    return float(c_max)
  for _ in range(200):
    mid = 0.5 * (lo + hi)
    if mid <= lo or mid >= hi:
      break
    lo, hi = (mid, hi) if f(mid) > 0.0 else (lo, mid)
  return float(0.5 * (lo + hi))


def stability_threshold(grads, batch_size: int) -> float:
  """Exact mean-square stability threshold ``eta*(B)`` of linearised SGD (module docstring).

  ``eta*(B) = 1 / lambda_max((H (+) H)^{-1/2} K_B (H (+) H)^{-1/2})``, computed on the range of ``H``: the
  process is mean-square stable iff ``eta <= eta*(B)``. ``eta*(n) = 2 / lambda_max(H)`` (GD).

  Args:
    grads: per-sample gradients ``(n, d)`` (rows ``g_i``; ``H_i = g_i g_i^T``).
    batch_size: ``B``, batches drawn without replacement.

  Returns:
    ``eta*(B)``.

  Example:
    >>> import numpy as np
    >>> g = np.array([[1.0, 0.0], [0.0, 1.0]])   # equal norms, H = I/2, tr(H) = 1
    >>> round(stability_threshold(g, 2), 6), round(stability_threshold(g, 1), 6)   # 2/lambda_max, 2/tr(H)
    (4.0, 2.0)
  """
  g = _as_grads(grads)
  p = noise_factor(g.shape[0], batch_size)
  lam, gt = _range(g)
  return 1.0 / _pencil_top(lam, gt, p)


def rayleigh_bounds(grads, batch_size: int) -> dict[str, float]:
  """Upper bounds on ``eta*(B)`` from test matrices of the pencil, and the quantities they involve.

  Args:
    grads: per-sample gradients ``(n, d)``.
    batch_size: ``B``.

  Returns:
    ``{'sharpness': 2/lambda_max, 'wu_ma_e': 2a/((1-p)a^2 + p E(u^T g)^4), 'trace': 2 tr(H)/((1-p)||H||_F^2 +
    p E||g||^4), 'trace_jensen': 2 tr(H)/((1-p)||H||_F^2 + p tr(H)^2), 'two_over_trace': 2/tr(H),
    'lambda_max', 'trace_h', 'frobenius_h', 'p'}``. All but ``two_over_trace`` bound ``eta*(B)`` for every ``B``;
    ``two_over_trace`` does for ``B = 1``.
  """
  g = _as_grads(grads)
  p = noise_factor(g.shape[0], batch_size)
  h = g.T @ g / g.shape[0]
  lam, vec = np.linalg.eigh(h)
  a, u = lam[-1], vec[:, -1]
  tr, fro2 = float(np.trace(h)), float(np.sum(h ** 2))
  norms4 = float(np.mean(np.sum(g ** 2, axis=1) ** 2))
  return {
      'sharpness': 2.0 / a, 'wu_ma_e': 2.0 * a / ((1 - p) * a * a + p * float(np.mean((g @ u) ** 4))),
      'trace': 2.0 * tr / ((1 - p) * fro2 + p * norms4), 'trace_jensen': 2.0 * tr / ((1 - p) * fro2 + p * tr * tr),
      'two_over_trace': 2.0 / tr, 'lambda_max': float(a), 'trace_h': tr, 'frobenius_h': math.sqrt(fro2), 'p': p,
  }


# -------------------------------------------------------------------------------------- Monte Carlo


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


@_float64
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
  g = _as_grads(grads)
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


# ---------------------------------------------------------------------------------- linear experiment


def linear_experiment(seed: int = 0, num_points: int = 40, dim: int = 20, num_lrs: int = 40,
                      batch_sizes: Sequence[int] | None = None, num_chains: int = 8192, num_steps: int = 100,
                      survey_cases: int = 200) -> dict[str, Any]:
  """Exact stability of linearised SGD on random rank-one per-sample Hessians.

  Computes ``rho(T)`` on an ``(eta, B)`` grid, ``eta*(B)`` for every ``B``, the Rayleigh bounds, Monte Carlo
  runs at ``0.9 eta*`` and ``1.1 eta*`` for ``B = 1`` and a middle ``B`` (on the same directions with equal
  norms, see :func:`simulate_linear_sgd`), and a survey of ``eta* tr(H)`` over random
  problems: ``B = 1`` with unequal and with equal norms, and ``B = 2, 4, 8`` with equal norms.

  Args:
    seed: integer seed.
    num_points: ``n``.
    dim: ``d`` (``T`` is ``d^2 x d^2``).
    num_lrs: grid points in ``eta`` (log-spaced over ``[0.3 eta*(1), 1.5 * 2 / lambda_max]``).
    batch_sizes: ``B`` values for the heatmap (default: 1, 2, 4, ..., n).
    num_chains: Monte Carlo chains.
    num_steps: Monte Carlo steps.
    survey_cases: random problems per survey row.

  Returns:
    A dict with ``grads``, ``learning_rates``, ``batch_sizes``, ``rho`` (len(lrs), len(B)), ``threshold``,
    ``bounds`` (dict of arrays over ``B``), ``monte_carlo`` (list of :func:`simulate_linear_sgd` dicts) and
    ``survey`` (dict of arrays of ``eta* tr(H)``).
  """
  g = rank_one_problem(seed, num_points, dim)
  if batch_sizes is None:
    batch_sizes = sorted({2 ** i for i in range(int(math.log2(num_points)) + 1)} | {num_points})
  batch_sizes = [int(b) for b in batch_sizes]
  n = num_points
  threshold = np.array([stability_threshold(g, b) for b in batch_sizes])
  bounds = {k: np.array([rayleigh_bounds(g, b)[k] for b in batch_sizes])
            for k in ('sharpness', 'wu_ma_e', 'trace', 'trace_jensen', 'two_over_trace')}
  lrs = np.geomspace(0.3 * threshold[0], 1.5 * bounds['sharpness'][0], num_lrs)
  h, hh, ehh = _kron_parts(g)
  eye = np.eye(dim)
  s = np.kron(h, eye) + np.kron(eye, h)
  rho = np.zeros((num_lrs, len(batch_sizes)))
  for j, b in enumerate(batch_sizes):
    p = noise_factor(n, b)
    k = (1 - p) * hh + p * ehh
    for i, eta in enumerate(lrs):
      eig = np.linalg.eigvalsh(np.eye(dim * dim) - eta * s + eta ** 2 * k)
      rho[i, j] = max(eig[-1], -eig[0])
  # Monte Carlo on the equal-norm version of the problem, where the sample mean of E||theta_t||^2 is not
  # dominated by rare chains (see simulate_linear_sgd).
  g_equal = rank_one_problem(seed, num_points, dim, equal_norms=True)
  mc = []
  for b in sorted({1, batch_sizes[len(batch_sizes) // 2]}):
    eta_star = stability_threshold(g_equal, b)
    for factor in (0.9, 1.1):
      mc.append(simulate_linear_sgd(g_equal, factor * eta_star, b, seed, num_chains, num_steps))
  return {'grads': g, 'learning_rates': lrs, 'batch_sizes': np.asarray(batch_sizes), 'rho': rho,
          'threshold': threshold, 'bounds': bounds, 'monte_carlo': mc,
          'survey': trace_survey(seed, survey_cases, num_points=min(n, 20), dim=min(dim, 10))}


def trace_survey(seed: int = 0, num_cases: int = 200, num_points: int = 20, dim: int = 10) -> dict[str, Any]:
  """``eta*(B) tr(H)`` over random rank-one problems: where ``tr(H) <= 2/eta`` holds and where it does not.

  Args:
    seed: integer seed.
    num_cases: problems per row (norm spreads drawn uniformly in ``[0.05, 1.5]`` for unequal norms).
    num_points: ``n``.
    dim: ``d``.

  Returns:
    ``{'b1_unequal', 'b1_equal', 'b2_equal', 'b4_equal', 'b8_equal', 'b4_trace_bound_ratio'}`` arrays of
    ``eta* tr(H)`` (the last: ``eta*(4)`` over the ``M = I`` bound, which must be ``<= 1``).
  """
  rng = np.random.default_rng(seed)
  out = {k: np.zeros(num_cases) for k in ('b1_unequal', 'b1_equal', 'b2_equal', 'b4_equal', 'b8_equal',
                                          'b4_trace_bound_ratio')}
  for c in range(num_cases):
    unequal = rank_one_problem(10_000 + c, num_points, dim, norm_spread=rng.uniform(0.05, 1.5))
    equal = rank_one_problem(20_000 + c, num_points, dim, equal_norms=True)
    tr_u, tr_e = np.sum(unequal ** 2) / num_points, np.sum(equal ** 2) / num_points
    out['b1_unequal'][c] = stability_threshold(unequal, 1) * tr_u
    for b in (1, 2, 4, 8):
      out[f'b{b}_equal'][c] = stability_threshold(equal, b) * tr_e
    out['b4_trace_bound_ratio'][c] = stability_threshold(unequal, 4) / rayleigh_bounds(unequal, 4)['trace']
  return out


# ----------------------------------------------------------------------------------- nonlinear models


def diagonal_net(params: PyTree, x: jax.Array) -> jax.Array:
  """Diagonal linear network ``f(x) = <u * v, x>``; ``params = {'u': (d,), 'v': (d,)}``."""
  return x @ (params['u'] * params['v'])


def relu_net(params: PyTree, x: jax.Array) -> jax.Array:
  """Two-layer ReLU network ``f(x) = sum_k a_k relu(w_k^T x)``; ``params = {'w': (m, d), 'a': (m,)}``."""
  return jax.nn.relu(x @ params['w'].T) @ params['a']


MODELS: dict[str, Callable[[PyTree, jax.Array], jax.Array]] = {'diagonal': diagonal_net, 'relu': relu_net}


def _square_loss(model, params, x, y):
  return 0.5 * jnp.mean((model(params, x) - y) ** 2)


def sparse_regression_data(seed: int, num_points: int = 40, dim: int = 100, sparsity: int = 5
                           ) -> dict[str, np.ndarray]:
  """Sparse linear teacher for the diagonal network: ``y = X beta*``, ``(1/n) sum_i x_ij^2 = 1`` per column.

  Returns:
    ``{'x', 'y', 'beta_star'}`` (float64); ``beta*`` has ``sparsity`` entries ``+-1``.
  """
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(num_points, dim))
  x /= np.sqrt(np.mean(x ** 2, axis=0, keepdims=True))  # makes tr(H) = ||u||^2 + ||v||^2 exactly
  beta = np.zeros(dim)
  beta[rng.choice(dim, sparsity, replace=False)] = rng.choice([-1.0, 1.0], sparsity)
  return {'x': x, 'y': x @ beta, 'beta_star': beta}


def sphere_teacher_data(seed: int, num_points: int = 50, dim: int = 10, num_test: int = 2000
                        ) -> dict[str, np.ndarray]:
  """Points on the unit sphere labelled by a two-neuron ReLU teacher ``relu(w1^T x) - relu(w2^T x)`` (times 2).

  Returns:
    ``{'x', 'y', 'x_test', 'y_test'}`` (float64, ``||x_i|| = 1``).
  """
  rng = np.random.default_rng(seed)

  def sphere(m):
    z = rng.normal(size=(m, dim))
    return z / np.linalg.norm(z, axis=1, keepdims=True)

  w = sphere(2)
  teacher = lambda x: 2.0 * (np.maximum(x @ w[0], 0.0) - np.maximum(x @ w[1], 0.0))
  x, xt = sphere(num_points), sphere(num_test)
  return {'x': x, 'y': teacher(x), 'x_test': xt, 'y_test': teacher(xt)}


def init_params(model: str, seed: int, dim: int, width: int = 50, scale: float = 1.0) -> dict[str, jax.Array]:
  """Initial parameters: diagonal ``u = scale * 1, v = 0``; ReLU ``w_k ~ N(0, I/d)``, ``a_k ~ scale N(0, 1/m)``."""
  if model == 'diagonal':
    return {'u': scale * jnp.ones(dim), 'v': jnp.zeros(dim)}
  if model == 'relu':
    kw, ka = jax.random.split(jax.random.key(seed))
    return {'w': jax.random.normal(kw, (width, dim)) / math.sqrt(dim),
            'a': scale * jax.random.normal(ka, (width,)) / math.sqrt(width)}
  raise ValueError(f'model must be one of {sorted(MODELS)}, got {model!r}')


@functools.partial(jax.jit, static_argnames=('model', 'batch_size', 'num_steps'))
def _train(model, params, x, y, key, learning_rates, batch_size, num_steps):
  fn = MODELS[model]
  n = x.shape[0]
  loss_fn = lambda p, xb, yb: _square_loss(fn, p, xb, yb)

  def run(lr):
    def step(p, t):
      if batch_size == n:
        xb, yb = x, y
      else:
        idx = jnp.argsort(jax.random.uniform(jax.random.fold_in(key, t), (n,)))[:batch_size]
        xb, yb = x[idx], y[idx]
      g = jax.grad(loss_fn)(p, xb, yb)
      return jax.tree.map(lambda a, b: a - lr * b, p, g), None

    p, _ = jax.lax.scan(step, params, jnp.arange(num_steps))
    return p, loss_fn(p, x, y)

  return jax.vmap(run)(learning_rates)


@_float64
def train_to_interpolation(model: str, data: dict[str, np.ndarray], learning_rates: Sequence[float],
                           batch_size: int, num_steps: int, seed: int = 0, width: int = 50,
                           init_scale: float = 1.0) -> tuple[PyTree, np.ndarray]:
  """GD (``batch_size = n``) or SGD (fresh batch without replacement each step) on the square loss, for every
  learning rate at once (``vmap``), in float64.

  Args:
    model: ``'diagonal'`` or ``'relu'``.
    data: ``{'x', 'y', ...}``.
    learning_rates: the grid of ``eta``.
    batch_size: ``B``.
    num_steps: steps.
    seed: seed of the initialisation and of the batches.
    width: hidden width (ReLU).
    init_scale: initialisation scale (see :func:`init_params`).

  Returns:
    ``(params, losses)``: parameters stacked over learning rates and the final full-batch losses.
  """
  x, y = jnp.asarray(data['x'], jnp.float64), jnp.asarray(data['y'], jnp.float64)
  _check_batch(x.shape[0], batch_size)
  params = init_params(model, seed, x.shape[1], width, init_scale)
  params, losses = _train(model, params, x, y, jax.random.key(seed + 1), jnp.asarray(learning_rates, jnp.float64),
                          batch_size, num_steps)
  return params, np.asarray(losses)


@functools.partial(jax.jit, static_argnames=('model',))
def _curvature(model, params, x, y, key):
  # Dense oracle and matrix-free estimates in one compiled function (one compilation per model and shape).
  fn = MODELS[model]
  flat, unravel = ravel_pytree(params)
  loss = lambda p: _square_loss(fn, p, x, y)
  h = jax.hessian(lambda w: loss(unravel(w)))(flat)
  grads = jax.vmap(lambda xi: ravel_pytree(jax.grad(lambda p: fn(p, xi[None])[0])(params))[0])(x)
  matvec = curvature.hessian_matvec(loss, params)
  ritz, _ = lanczos_lib.ritz(lanczos_lib.lanczos(matvec, params, key, min(30, flat.size)))
  hutch, hutch_err = estimators.hutchinson_trace(matvec, params, key, num_probes=100)
  return h, grads, ritz[-1], hutch, hutch_err, loss(params)


@_float64
def sharpness_metrics(model: str, params: PyTree, data: dict[str, np.ndarray], batch_size: int,
                      seed: int = 0) -> dict[str, float]:
  """Exact sharpness of a (near-)interpolating minimum, ``optim`` estimator cross-checks and the norms.

  ``H`` is the dense Hessian of the square loss (``jax.hessian``); ``eta*(B)`` is :func:`stability_threshold` of
  the per-sample gradients (exact for the linearisation at interpolation, where ``H = (1/n) sum_i g_i g_i^T``).
  ``lanczos_lambda_max`` (30 steps of ``optim.lanczos``) and ``hutchinson_trace`` (100 Rademacher probes of
  ``optim.estimators``) are the matrix-free estimates on ``optim.curvature.hessian_matvec``.

  Args:
    model: ``'diagonal'`` or ``'relu'``.
    params: parameters of one run.
    data: the training data.
    batch_size: the ``B`` the minimum is checked against.
    seed: seed of the estimators.

  Returns:
    ``{'lambda_max', 'trace', 'frobenius', 'threshold', 'lanczos_lambda_max', 'hutchinson_trace',
    'hutchinson_stderr', 'loss'}`` plus ``'l1'`` (``||u * v||_1``, diagonal) or ``'path_norm'`` and
    ``'weighted_path_norm'`` (ReLU).
  """
  params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
  x, y = jnp.asarray(data['x'], jnp.float64), jnp.asarray(data['y'], jnp.float64)
  h, grads, ritz, hutch, hutch_err, loss = (np.asarray(a) for a in _curvature(model, params, x, y,
                                                                                jax.random.key(seed)))
  eig = np.linalg.eigvalsh(h)
  out = {'lambda_max': float(eig[-1]), 'trace': float(np.trace(h)), 'frobenius': float(np.linalg.norm(h)),
         'threshold': stability_threshold(grads, batch_size), 'lanczos_lambda_max': float(ritz),
         'hutchinson_trace': float(hutch), 'hutchinson_stderr': float(hutch_err), 'loss': float(loss)}
  if model == 'diagonal':
    out['l1'] = float(jnp.sum(jnp.abs(params['u'] * params['v'])))
  else:
    pre = x @ params['w'].T  # (n, m)
    active = np.asarray(pre > 0).mean(0)
    q = np.asarray(jnp.mean(jax.nn.relu(pre) ** 2, axis=0))
    a = np.abs(np.asarray(params['a']))
    out['path_norm'] = float(np.sum(a * np.linalg.norm(np.asarray(params['w']), axis=1)))
    out['weighted_path_norm'] = float(np.sum(a * np.sqrt(active * q)))
  return out


_METRICS = ('lambda_max', 'trace', 'frobenius', 'threshold', 'lanczos_lambda_max', 'hutchinson_trace',
            'hutchinson_stderr', 'loss', 'test_error')


def _test_error(model, params, data):
  if model == 'diagonal':
    beta = np.asarray(params['u'] * params['v'])
    return float(np.sum((beta - data['beta_star']) ** 2) / np.sum(data['beta_star'] ** 2))
  pred = np.asarray(relu_net(params, jnp.asarray(data['x_test'])))
  return float(np.mean((pred - data['y_test']) ** 2) / np.mean(data['y_test'] ** 2))


@_float64
def nonlinear_experiment(model: str, data: dict[str, np.ndarray], learning_rates: Sequence[float],
                         batch_sizes: Sequence[int], num_steps: int, tolerance: float = 1e-8, seed: int = 0,
                         width: int = 50, init_scale: float = 1.0) -> dict[str, Any]:
  """Trains ``model`` by GD/SGD over a grid of learning rates and measures the minima found.

  A run counts as converged when its final full-batch loss is below ``tolerance`` (interpolation).

  Args:
    model: ``'diagonal'`` or ``'relu'``.
    data: training data (see :func:`sparse_regression_data`, :func:`sphere_teacher_data`).
    learning_rates: grid of ``eta``.
    batch_sizes: ``B`` values (``n`` means GD).
    num_steps: steps per run.
    tolerance: final-loss threshold for convergence.
    seed: integer seed.
    width: ReLU width.
    init_scale: initialisation scale.

  Returns:
    ``{'model', 'learning_rates', 'batch_sizes', 'runs'}``; ``runs[B]`` is a dict of arrays over learning rates
    (NaN where the run did not converge): ``converged``, ``final_loss``, ``test_error`` and every key of
    :func:`sharpness_metrics`.
  """
  lrs = np.asarray(learning_rates, np.float64)
  runs = {}
  for b in batch_sizes:
    params, losses = train_to_interpolation(model, data, lrs, b, num_steps, seed, width, init_scale)
    rows = []
    for i in range(len(lrs)):
      p = jax.tree.map(lambda a: a[i], params)
      if np.isfinite(losses[i]) and losses[i] < tolerance:
        row = sharpness_metrics(model, p, data, b, seed)
        row['test_error'] = _test_error(model, p, data)
        rows.append(row)
      else:
        rows.append(None)
    keys = list(_METRICS) + (['l1'] if model == 'diagonal' else ['path_norm', 'weighted_path_norm'])
    runs[int(b)] = {'converged': np.array([r is not None for r in rows]), 'final_loss': losses,
                    **{k: np.array([r[k] if r else np.nan for r in rows]) for k in keys}}
  return {'model': model, 'learning_rates': lrs, 'batch_sizes': np.asarray(batch_sizes), 'runs': runs}


# -------------------------------------------------------------------------------------------- driver


def run(small: bool = False, seed: int = 0) -> dict[str, Any]:
  """The exact linear experiment and both nonlinear models, as in the figures.

  Args:
    small: a notebook-sized setting (seconds) instead of the full-size figures.
    seed: integer seed.

  Returns:
    ``{'linear', 'diagonal', 'relu'}`` result dicts for the ``plot_*`` functions.
  """
  if small:
    linear = linear_experiment(seed, num_points=16, dim=6, num_lrs=24, num_chains=2048, num_steps=60,
                               survey_cases=30)
    diag_data = sparse_regression_data(seed, num_points=20, dim=40, sparsity=3)
    relu_data = sphere_teacher_data(seed, num_points=20, dim=5, num_test=500)
    d_lrs, r_lrs, d_steps, r_steps, width, r_tol = (np.geomspace(0.01, 0.4, 6), np.geomspace(0.3, 3.0, 6), 4000,
                                                    6000, 40, 1e-6)
  else:
    linear = linear_experiment(seed)
    diag_data = sparse_regression_data(seed)
    relu_data = sphere_teacher_data(seed)
    d_lrs, r_lrs, d_steps, r_steps, width, r_tol = (np.geomspace(0.02, 0.6, 12), np.geomspace(0.25, 3.0, 10),
                                                    10000, 15000, 50, 1e-8)
  n_d, n_r = len(diag_data['y']), len(relu_data['y'])
  return {
      'linear': linear,
      'diagonal': nonlinear_experiment('diagonal', diag_data, d_lrs, (1, 4, n_d), d_steps, 1e-8, seed,
                                       init_scale=0.3),
      'relu': nonlinear_experiment('relu', relu_data, r_lrs, (1, 4, n_r), r_steps, r_tol, seed, width),
  }


# --------------------------------------------------------------------------------------------- plots


def _no_labels():
  import matplotlib.ticker
  # Default minor log-scale labels collide on ranges of about a decade; label only 2x and 5x.
  def fmt(v, _):
    lead = v / 10 ** math.floor(math.log10(v)) if v > 0 else 0.0
    return f'{v:g}' if round(lead) in (2, 5) else ''
  return matplotlib.ticker.FuncFormatter(fmt)


def _axes(ax):
  import matplotlib.pyplot as plt
  if ax is None:
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    return fig, ax
  return ax.figure, ax


def plot_stability_heatmap(linear: dict[str, Any], ax=None):
  """``log rho(T)`` over ``(B, eta)`` with the exact ``eta*(B)``, ``2/lambda_max``, ``2/tr(H)`` and trace bound."""
  fig, ax = _axes(ax)
  b, lrs, rho = linear['batch_sizes'], linear['learning_rates'], linear['rho']
  import matplotlib.colors as mcolors
  log_rho = np.log(rho)
  # Separate scales on the two sides of 0: decay rates below eta* are much smaller than growth rates above.
  norm = mcolors.TwoSlopeNorm(vmin=min(log_rho.min(), -1e-6), vcenter=0.0, vmax=max(log_rho.max(), 1e-6))
  mesh = ax.pcolormesh(np.arange(len(b) + 1) - 0.5, _edges(lrs), log_rho, cmap='RdBu_r', norm=norm,
                       shading='flat')
  fig.colorbar(mesh, ax=ax, label='log rho(T)  (>0: E||theta||^2 grows)')
  x = np.arange(len(b))
  ax.plot(x, linear['threshold'], 'k-', lw=2, label='exact eta*(B)')
  ax.plot(x, linear['bounds']['sharpness'], 'C2--', label='2 / lambda_max (GD)')
  ax.plot(x, linear['bounds']['two_over_trace'], 'C1--', label='2 / tr(H)')
  ax.plot(x, linear['bounds']['trace'], 'C1:', label='M = I bound (any B)')
  ax.set_xticks(x, [str(v) for v in b])
  ax.set_yscale('log')
  ax.set_xlabel('batch size B')
  ax.set_ylabel('learning rate eta')
  ax.legend(fontsize=7, loc='lower right')
  return fig


def _edges(v):
  mid = np.sqrt(v[1:] * v[:-1])
  return np.concatenate([[v[0] ** 2 / mid[0]], mid, [v[-1] ** 2 / mid[-1]]])


def plot_monte_carlo(linear: dict[str, Any], ax=None):
  """Monte Carlo ``E ||theta_t||^2`` (band: 2 standard errors) against the operator's ``rho(T)^t``."""
  fig, ax = _axes(ax)
  for i, r in enumerate(linear['monte_carlo']):
    eta_ratio = 0.9 if r['rho'] < 1 else 1.1
    label = f"B={r['batch_size']}, eta={eta_ratio} eta*"
    ax.fill_between(r['steps'], r['mean_sq'] - 2 * r['stderr'], r['mean_sq'] + 2 * r['stderr'], color=f'C{i}',
                    alpha=0.3)
    ax.plot(r['steps'], r['mean_sq'], color=f'C{i}', label=label + ' (MC)')
    ax.plot(r['steps'], r['predicted'], 'k--', lw=0.8)
  ax.plot([], [], 'k--', lw=0.8, label='rho(T)^t')
  ax.set_yscale('log')
  ax.set_xlabel('step t')
  ax.set_ylabel('E ||theta_t - theta*||^2')
  ax.legend(fontsize=7)
  return fig


def plot_sharpness_vs_lr(result: dict[str, Any], ax=None):
  """Measured ``lambda_max(H)`` (GD) and ``tr(H)`` (SGD, ``B = 1``) at the minima found, against ``2/eta``."""
  fig, ax = _axes(ax)
  lrs = result['learning_rates']
  runs = result['runs']
  n = max(runs)
  ax.plot(lrs, 2 / lrs, 'k-', lw=1, label='2 / eta')
  ax.plot(lrs, runs[n]['lambda_max'], 'o', color='C0', label='GD: lambda_max(H)')
  ax.plot(lrs, runs[n]['trace'], 'x', color='C0', label='GD: tr(H)')
  ax.plot(lrs, runs[1]['trace'], 's', color='C3', mfc='none', label='SGD B=1: tr(H)')
  ax.plot(lrs, runs[1]['lambda_max'], '^', color='C3', mfc='none', label='SGD B=1: lambda_max(H)')
  ax.set_xscale('log')
  ax.xaxis.set_minor_formatter(_no_labels())
  ax.set_yscale('log')
  ax.set_xlabel('learning rate eta')
  ax.set_ylabel('sharpness at the minimum found')
  ax.set_title(result['model'], fontsize=9)
  ax.legend(fontsize=7)
  return fig


def plot_norm_vs_lr(result: dict[str, Any], ax=None):
  """``||beta||_1`` (diagonal) or the weighted path norm (ReLU) against ``1/eta``, GD and SGD."""
  fig, ax = _axes(ax)
  key = 'l1' if result['model'] == 'diagonal' else 'weighted_path_norm'
  lrs = result['learning_rates']
  ax.plot(lrs, 1 / lrs, 'k-', lw=1, label='1 / eta')
  for i, (b, r) in enumerate(sorted(result['runs'].items())):
    ax.plot(lrs, r[key], 'o-', color=f'C{i}', ms=4, label=f'B={b}' + (' (GD)' if b == max(result['runs']) else ''))
  ax.set_xscale('log')
  ax.xaxis.set_minor_formatter(_no_labels())
  ax.set_yscale('log')
  ax.set_xlabel('learning rate eta')
  ax.set_ylabel(key)
  ax.set_title(result['model'], fontsize=9)
  ax.legend(fontsize=7)
  return fig
