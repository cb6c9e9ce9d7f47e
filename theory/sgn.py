"""Small-Gain Nash (SGN) certificates of contraction for N-player differentiable games.

Sharma, "Small-Gain Nash: Certified Contraction to Nash Equilibria in Differentiable Games", arXiv 2512.06791;
the official code is AashVed/SmallGainNash (NumPy/PyTorch). A game is given by its pseudo-gradient
``F(x) = (grad_1 f_1, ..., grad_N f_N)`` with player blocks of sizes ``d_1..d_N`` and Jacobian blocks ``J_ij``.

* Bounds on a region: curvature ``mu_i <= lambda_min(sym J_ii)`` and coupling ``L_ij >= ||J_ij||_2``
  (:func:`block_bounds` at a point, :func:`region_bounds` as min / max over sampled points).
* SGN matrix for weights ``w > 0``: ``C(w) = W K + K^T W`` with the Z-matrix ``K_ii = mu_i``, ``K_ij = -L_ij``
  (:func:`sgn_matrix`), and the margin ``alpha*(w) = lambda_min(W^{-1/2} C(w) W^{-1/2}) / 2``
  (:func:`sgn_margin`). This is the official code's definition (``sgn_margin`` in
  ``LQ_GAMES/compute_sgn_metrics.py``); the code covers ``N = 2`` and the same formula is used for any ``N``.
* Two players, ``r = w_2 / w_1``: ``alpha*(r) = lambda_min [[mu_1, -c], [-c, mu_2]]``,
  ``c = (L_12 / sqrt(r) + L_21 sqrt(r)) / 2``, maximised at ``r = L_12 / L_21`` for any ``mu`` (where
  ``c = sqrt(L_12 L_21)``); ``alpha*(r) >= alpha`` exactly on the band ``[r_-, r_+]``,
  ``r_pm = (2P - L_12 L_21 pm 2 sqrt(P (P - L_12 L_21))) / L_21^2`` with ``P = (mu_1 - alpha)(mu_2 - alpha)``,
  non-empty iff ``P > L_12 L_21`` and ``mu_i > alpha`` (:func:`two_player_band`).
* Any ``N``: some ``w`` gives ``alpha*(w) > 0`` iff ``K`` is a nonsingular M-matrix, i.e.
  ``rho(diag(mu)^{-1} L) < 1`` with all ``mu_i > 0`` (the classical small-gain condition; for ``N = 2``,
  ``L_12 L_21 < mu_1 mu_2``) (:func:`sgn_feasible`); :func:`optimal_weights` maximises the margin.
* Metric ``M(w) = diag(w_i I_{d_i})`` (or ``diag(w_i F_i)`` with Fisher blocks), the true margin
  ``alpha_true = lambda_min(M^{-1/2} (M J + J^T M) M^{-1/2}) / 2 >= alpha*`` and the Lipschitz constant
  ``beta = ||M^{1/2} J M^{-1/2}||_2`` (:func:`metric_constants`).
* Certificates: the flow contracts at rate ``alpha`` in ``||.||_M``; projected Euler with ``h < 2 alpha /
  beta^2`` contracts by ``sqrt(1 - 2 h alpha + h^2 beta^2)`` per step (:func:`euler_factor`); RK4 uses the
  official code's *guideline* ``h <= C_4 / beta`` with ``C_4 = 2.5`` (``LQ_GAMES/config.py``), which is not a
  proven bound here: it is compared with the exact RK4 threshold.

Experiments (every function is float64 NumPy / ``jax.enable_x64``; plots are separate): the paper's 2-D
mini-toy (:func:`mini_toy`), its 64-dimensional linear-quadratic game across coupling strengths (:func:`lq_sweep`,
:func:`lq_phase`, :func:`lq_band`, :func:`lq_random_suite`) and an entropy-regularised two-player Markov game
under the Fisher metric with natural policy gradient (:func:`markov_game`).
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from scipy import optimize

RK4_C4 = 2.5  # the official code's RK4 guideline constant (LQ_GAMES/config.py, WeightSearchConfig.rk4_c4)
RK4_REAL_AXIS = 2.785293563405282  # RK4's stability interval on the negative real axis, |1 + z + ... + z^4/24| = 1


def _float64(fn):
  @functools.wraps(fn)
  def wrapper(*args, **kwargs):
    with jax.enable_x64(True):
      return fn(*args, **kwargs)
  return wrapper


def _sym(a: np.ndarray) -> np.ndarray:
  return 0.5 * (a + a.T)


def _offsets(sizes: Sequence[int]) -> list[slice]:
  if any(int(s) < 1 for s in sizes):
    raise ValueError(f'sizes must be positive block sizes, got {sizes!r}')
  edges = np.concatenate([[0], np.cumsum(sizes)])
  return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


# Bounds, matrix, margin.

def block_bounds(jacobian: np.ndarray, sizes: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
  """Curvature ``mu_i = lambda_min(sym J_ii)`` and couplings ``L_ij = ||J_ij||_2`` (zero diagonal) at a point.

  Args:
    jacobian: the ``D x D`` Jacobian of the pseudo-gradient, ``D = sum(sizes)``.
    sizes: player block sizes.

  Returns:
    ``(mu, L)`` with shapes ``(N,)`` and ``(N, N)``.
  """
  jac = np.asarray(jacobian, np.float64)
  blocks = _offsets(sizes)
  if jac.shape != (blocks[-1].stop,) * 2:
    raise ValueError(f'jacobian must be {blocks[-1].stop}x{blocks[-1].stop} for sizes {sizes}, got {jac.shape}')
  n = len(blocks)
  mu = np.array([np.linalg.eigvalsh(_sym(jac[b, b]))[0] for b in blocks])
  coupling = np.zeros((n, n))
  for i, j in itertools.permutations(range(n), 2):
    coupling[i, j] = np.linalg.norm(jac[blocks[i], blocks[j]], 2)
  return mu, coupling


def region_bounds(pseudo_gradient: Callable, points: np.ndarray, sizes: Sequence[int]
                  ) -> tuple[np.ndarray, np.ndarray]:
  """``mu_i = min`` and ``L_ij = max`` of :func:`block_bounds` over sampled points (``jax.jacfwd``).

  Args:
    pseudo_gradient: ``x -> F(x)`` (a JAX function of a flat vector).
    points: ``(P, D)`` points of the region.
    sizes: player block sizes.

  Returns:
    ``(mu, L)``: bounds valid on the sampled points (a certificate for the region only if they are).
  """
  jac_fn = _float64(lambda x: np.asarray(jax.jacfwd(pseudo_gradient)(jnp.asarray(x, jnp.float64))))
  bounds = [block_bounds(jac_fn(p), sizes) for p in np.atleast_2d(points)]
  return np.min([b[0] for b in bounds], axis=0), np.max([b[1] for b in bounds], axis=0)


def _check_bounds(mu, coupling, w=None):
  mu = np.asarray(mu, np.float64)
  coupling = np.asarray(coupling, np.float64)
  if mu.ndim != 1 or coupling.shape != (mu.size, mu.size):
    raise ValueError(f'mu must be (N,) and L (N, N); got {mu.shape} and {coupling.shape}')
  if np.any(coupling < 0) or not np.all(np.isfinite(coupling)):
    raise ValueError('L (the couplings) must be finite and non-negative')
  if w is None:
    return mu, coupling
  w = np.asarray(w, np.float64)
  if w.shape != mu.shape or np.any(~(w > 0)) or not np.all(np.isfinite(w)):
    raise ValueError(f'w must be {mu.size} positive finite weights, got {w!r}')
  return mu, coupling, w


def sgn_matrix(mu, coupling, w) -> np.ndarray:
  """``C(w) = W K + K^T W``: ``C_ii = 2 w_i mu_i``, ``C_ij = -(w_i L_ij + w_j L_ji)``."""
  mu, coupling, w = _check_bounds(mu, coupling, w)
  k = np.diag(mu) - coupling * (1 - np.eye(mu.size))
  return np.diag(w) @ k + k.T @ np.diag(w)


def sgn_margin(mu, coupling, w) -> float:
  """``alpha*(w) = lambda_min(W^{-1/2} C(w) W^{-1/2}) / 2`` (the official code's definition)."""
  c = sgn_matrix(mu, coupling, w)
  s = 1 / np.sqrt(np.asarray(w, np.float64))
  return 0.5 * float(np.linalg.eigvalsh(s[:, None] * c * s[None, :])[0])


def two_player_margin(mu, coupling, r) -> np.ndarray:
  """``alpha*(r)`` for ``w = (1, r)``, vectorised over ``r`` (closed form of a 2x2 ``lambda_min``)."""
  mu, coupling = _check_bounds(mu, coupling)
  r = np.asarray(r, np.float64)
  c = 0.5 * (coupling[0, 1] / np.sqrt(r) + coupling[1, 0] * np.sqrt(r))
  return 0.5 * (mu[0] + mu[1]) - np.sqrt(0.25 * (mu[0] - mu[1]) ** 2 + c ** 2)


def two_player_band(mu, coupling, alpha: float = 0.0) -> tuple[float, float]:
  """The ratios ``r = w_2 / w_1`` with ``alpha*(r) >= alpha``: ``[r_-, r_+]`` or ``(nan, nan)`` if empty."""
  mu, coupling = _check_bounds(mu, coupling)
  if mu.size != 2:
    raise ValueError(f'two_player_band needs 2 players, got {mu.size}')
  l12, l21 = coupling[0, 1], coupling[1, 0]
  p = (mu[0] - alpha) * (mu[1] - alpha)
  if mu[0] <= alpha or mu[1] <= alpha or p <= l12 * l21 or l21 == 0:
    return math.nan, math.nan
  base, rad = 2 * p - l12 * l21, 2 * math.sqrt(p * (p - l12 * l21))
  return (base - rad) / l21 ** 2, (base + rad) / l21 ** 2


def sgn_feasible(mu, coupling) -> bool:
  """Whether some ``w > 0`` gives ``alpha*(w) > 0``: all ``mu_i > 0`` and ``rho(diag(mu)^{-1} L) < 1``."""
  mu, coupling = _check_bounds(mu, coupling)
  if np.any(mu <= 0):
    return False
  gain = coupling * (1 - np.eye(mu.size)) / mu[:, None]
  return bool(np.max(np.abs(np.linalg.eigvals(gain))) < 1)


def optimal_weights(mu, coupling, restarts: int = 4, seed: int = 0) -> tuple[np.ndarray, float]:
  """Weights maximising ``alpha*(w)`` (normalised to ``w_1 = 1``) and the margin reached.

  Two players: the closed form ``r = L_12 / L_21``. Otherwise Nelder-Mead on ``log w`` from the weights of
  the M-matrix certificate (left Perron vector of ``diag(mu)^{-1} L``) and random restarts.
  """
  mu, coupling = _check_bounds(mu, coupling)
  n = mu.size
  if n == 2 and coupling[0, 1] > 0 and coupling[1, 0] > 0:
    w = np.array([1.0, coupling[0, 1] / coupling[1, 0]])
    return w, sgn_margin(mu, coupling, w)
  objective = lambda z: -sgn_margin(mu, coupling, np.exp(np.concatenate([[0.0], z])))
  starts = [np.zeros(n - 1)]
  if np.all(mu > 0):
    vals, vecs = np.linalg.eig((coupling / mu[:, None]).T)
    v = np.abs(np.real(vecs[:, np.argmax(np.real(vals))])) + 1e-12
    starts.append(np.log(v[1:] / v[0]))
  rng = np.random.default_rng(seed)
  starts += [rng.normal(scale=2.0, size=n - 1) for _ in range(restarts)]
  best = min((optimize.minimize(objective, z0, method='Nelder-Mead',
                                options={'xatol': 1e-10, 'fatol': 1e-12, 'maxiter': 4000}) for z0 in starts),
             key=lambda res: res.fun)
  w = np.exp(np.concatenate([[0.0], best.x]))
  return w, -float(best.fun)


# Metric, true margin, Lipschitz constant, step bounds.

def metric(w, sizes: Sequence[int], fisher_blocks: Sequence[np.ndarray] | None = None) -> np.ndarray:
  """``M(w) = diag(w_i I_{d_i})``, or ``diag(w_i F_i)`` with Fisher blocks (mirror / natural geometry)."""
  blocks = fisher_blocks if fisher_blocks is not None else [np.eye(int(s)) for s in sizes]
  return _block_diag([wi * np.asarray(b, np.float64) for wi, b in zip(w, blocks)])


def _block_diag(blocks):
  from scipy.linalg import block_diag
  return block_diag(*blocks)


def _sqrt_pair(m: np.ndarray):
  vals, vecs = np.linalg.eigh(_sym(m))
  if vals[0] <= 0:
    raise ValueError('the metric M must be positive definite')
  return (vecs * np.sqrt(vals)) @ vecs.T, (vecs / np.sqrt(vals)) @ vecs.T


def metric_constants(jacobian: np.ndarray, m: np.ndarray, preconditioner: np.ndarray | None = None
                     ) -> tuple[float, float]:
  """``(alpha_true, beta)`` of the field ``-J x`` (or ``-P^{-1} J x`` with a preconditioner) in ``||.||_M``.

  ``alpha_true = lambda_min(M^{-1/2} sym(M A) M^{-1/2})`` and ``beta = ||M^{1/2} A M^{-1/2}||_2`` with
  ``A = J`` (or ``P^{-1} J``; for natural gradient ``P = diag(F_i)``, the Fisher without weights).
  """
  a = np.asarray(jacobian, np.float64)
  if preconditioner is not None:
    a = np.linalg.solve(preconditioner, a)
  half, inv_half = _sqrt_pair(m)
  scaled = half @ a @ inv_half
  return float(np.linalg.eigvalsh(_sym(scaled))[0]), float(np.linalg.norm(scaled, 2))


def euclidean_margin(jacobian: np.ndarray) -> float:
  """``gamma_Euc = lambda_min(sym J)``: Euclidean strong monotonicity (Rosen 1965) iff positive."""
  return float(np.linalg.eigvalsh(_sym(np.asarray(jacobian, np.float64)))[0])


def euler_step_bound(alpha: float, beta: float) -> float:
  """``2 alpha / beta^2`` (0 when ``alpha <= 0``): projected Euler contracts in ``||.||_M`` below it."""
  return 2 * alpha / beta ** 2 if alpha > 0 else 0.0


def euler_factor(h, alpha: float, beta: float):
  """The certified per-step factor ``sqrt(1 - 2 h alpha + h^2 beta^2)`` of projected Euler."""
  return np.sqrt(np.maximum(1 - 2 * np.asarray(h) * alpha + np.asarray(h) ** 2 * beta ** 2, 0.0))


def rk4_step_guideline(beta: float, alpha: float = 1.0, c4: float = RK4_C4) -> float:
  """The official code's RK4 guideline ``h <= C_4 / beta`` (0 when ``alpha <= 0``)."""
  return c4 / beta if alpha > 0 else 0.0


def step_matrix(jacobian: np.ndarray, h: float, method: str = 'euler') -> np.ndarray:
  """One step of Euler (``I - hJ``) or RK4 (``sum_{k<=4} (-hJ)^k / k!``) on ``x' = -J x``."""
  a = -h * np.asarray(jacobian, np.float64)
  eye = np.eye(a.shape[0])
  if method == 'euler':
    return eye + a
  if method == 'rk4':
    return eye + a @ (eye + a @ (eye / 2 + a @ (eye / 6 + a / 24)))
  raise ValueError(f"method must be 'euler' or 'rk4', got {method!r}")


def spectral_radius(t: np.ndarray) -> float:
  return float(np.max(np.abs(np.linalg.eigvals(t))))


def stability_threshold(jacobian: np.ndarray, method: str = 'euler', h_max: float | None = None) -> float:
  """The largest ``h`` with ``rho(step_matrix(J, h)) < 1`` from 0 (bisection after a scan); 0 if none.

  For Euler it is exact: ``min_k 2 Re(lambda_k) / |lambda_k|^2`` over the eigenvalues of ``J``.
  """
  lam = np.linalg.eigvals(np.asarray(jacobian, np.float64))
  if np.any(lam.real <= 0):
    return 0.0
  if method == 'euler':
    return float(np.min(2 * lam.real / np.abs(lam) ** 2))
  # RK4: stable iff |P(-h lambda)| < 1 for every eigenvalue; scan, then bisect the first crossing.
  poly = lambda z: 1 + z + z ** 2 / 2 + z ** 3 / 6 + z ** 4 / 24
  rho = lambda h: np.max(np.abs(poly(-h * lam)))
  h_max = h_max or 4.0 / np.max(np.abs(lam))
  grid = np.linspace(0, h_max, 801)[1:]
  bad = np.nonzero([rho(h) >= 1 for h in grid])[0]
  if bad.size == 0:
    return float(h_max)
  lo, hi = (grid[bad[0] - 1] if bad[0] > 0 else 0.0), grid[bad[0]]
  for _ in range(60):
    mid = 0.5 * (lo + hi)
    lo, hi = (mid, hi) if rho(mid) < 1 else (lo, mid)
  return float(lo)


def simulate_contraction(jacobian: np.ndarray, m: np.ndarray, h: float, method: str = 'euler',
                         steps: int = 200, num_pairs: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
  """Runs the linear game from random pairs ``x, y``; returns per-step ``||x - y||_M`` ratios.

  For a linear field the difference evolves by the step matrix itself, so ``e_{t+1} = T e_t``.

  Returns:
    ``{'ratios': (num_pairs, steps)`` one-step ratios ``||e_{t+1}||_M / ||e_t||_M``, ``'max_ratio'``,
    ``'rate'`` (the geometric-mean factor over the run, median over pairs)}.
  """
  t = step_matrix(jacobian, h, method)
  half, _ = _sqrt_pair(m)
  e = np.random.default_rng(seed).normal(size=(t.shape[0], num_pairs))
  e /= np.linalg.norm(half @ e, axis=0)
  ratios = np.empty((steps, num_pairs))
  for k in range(steps):
    e = t @ e
    ratios[k] = np.linalg.norm(half @ e, axis=0)
    e /= np.where(ratios[k] > 0, ratios[k], 1.0)  # renormalise: ratios are scale-free, unstable runs stay finite
  return {'ratios': ratios.T, 'max_ratio': float(ratios.max()),
          'rate': float(np.median(np.exp(np.mean(np.log(np.maximum(ratios, 1e-300)), axis=0))))}


# The paper's games.

def mini_toy(mu1: float = 1.0, mu2: float = 1.0, a: float = 10.0, b: float = 0.05,
             w: Sequence[float] = (1.0, 200.0)) -> dict[str, Any]:
  """The 2-D game ``f_1 = mu_1 x_1^2 / 2 + a x_1 x_2``, ``f_2 = mu_2 x_2^2 / 2 + b x_1 x_2`` (paper Sec. 5.1).

  ``J = [[mu_1, a], [b, mu_2]]``; with the paper's values the Euclidean margin is ``1 - (a + b)/2 = -4.025``
  and at ``w = (1, 200)`` the SGN margin is ``1 - sqrt(ab) = 0.2929`` (``M^{1/2} J M^{-1/2}`` is symmetric).

  Returns:
    The bounds, margins (Euclidean, SGN, true), ``beta``, the band, the optimal ratio, the step bounds and
    a flow trajectory from ``x_0 = (0.15, -0.15)`` (Euclidean norm grows, ``M``-norm decays).
  """
  jac = np.array([[mu1, a], [b, mu2]], np.float64)
  mu, coupling = block_bounds(jac, (1, 1))
  w = np.asarray(w, np.float64)
  m = metric(w, (1, 1))
  alpha_true, beta = metric_constants(jac, m)
  alpha = sgn_margin(mu, coupling, w)
  w_opt, alpha_opt = optimal_weights(mu, coupling)
  # Flow x' = -J x, exactly: x(t) = expm(-J t) x0.
  from scipy.linalg import expm
  times = np.linspace(0, 3, 301)
  x0 = np.array([0.15, -0.15])
  traj = np.array([expm(-jac * t) @ x0 for t in times])
  return {
      'jacobian': jac, 'mu': mu, 'L': coupling, 'w': w, 'euclidean_margin': euclidean_margin(jac),
      'alpha_sgn': alpha, 'alpha_true': alpha_true, 'beta': beta, 'w_opt': w_opt, 'alpha_opt': alpha_opt,
      'band': two_player_band(mu, coupling), 'euler_bound': euler_step_bound(alpha, beta),
      'rk4_guideline': rk4_step_guideline(beta, alpha), 'euler_true': stability_threshold(jac, 'euler'),
      'rk4_true': stability_threshold(jac, 'rk4'), 'times': times, 'trajectory': traj,
      'euclidean_norm': np.linalg.norm(traj, axis=1),
      'metric_norm': np.sqrt(np.einsum('ti,ij,tj->t', traj, m, traj)),
  }


def lq_coupling_matrix(d1: int = 32, seed: int = 12345) -> np.ndarray:
  """A random orthogonal ``d1 x d1`` matrix (QR of a Gaussian, signs fixed by ``diag(R) > 0``)."""
  q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((d1, d1)))
  signs = np.sign(np.diag(r))
  signs[signs == 0] = 1
  return q * signs


def lq_jacobian(lam: float, q1: np.ndarray, q2: np.ndarray, base: np.ndarray, a: float = 10.0,
                b: float = 0.05) -> np.ndarray:
  """``H(lambda) = [[Q_1, lambda a R], [lambda b R^T, Q_2]]``: the LQ game's (constant) Jacobian."""
  return np.block([[q1, lam * a * base], [lam * b * base.T, q2]])


def lq_sweep(lambdas: Sequence[float] = tuple(np.linspace(0, 2.5, 61)), d: int = 64, a: float = 10.0,
             b: float = 0.05, mu0: float = 1.0, seed: int = 12345, ratio: float | None = None
             ) -> dict[str, np.ndarray]:
  """Margins and step bounds of the paper's LQ game (``Q_i = mu0 I``, orthogonal ``R``) across ``lambda``.

  The weights are the official code's "balanced" choice ``w_2 / w_1 = a / b`` (= ``L_12 / L_21``, optimal).
  """
  d1 = d // 2
  base = lq_coupling_matrix(d1, seed)
  q = mu0 * np.eye(d1)
  w = np.array([1.0, ratio if ratio is not None else a / b])
  m = metric(w, (d1, d1))
  out = {k: [] for k in ('gamma_euc', 'alpha_sgn', 'alpha_true', 'beta', 'euler_bound', 'rk4_guideline',
                         'euler_true', 'rk4_true')}
  for lam in lambdas:
    jac = lq_jacobian(lam, q, q, base, a, b)
    mu, coupling = block_bounds(jac, (d1, d1))
    alpha = sgn_margin(mu, coupling, w)
    alpha_true, beta = metric_constants(jac, m)
    out['gamma_euc'].append(euclidean_margin(jac))
    out['alpha_sgn'].append(alpha)
    out['alpha_true'].append(alpha_true)
    out['beta'].append(beta)
    out['euler_bound'].append(euler_step_bound(alpha, beta))
    out['rk4_guideline'].append(rk4_step_guideline(beta, alpha))
    out['euler_true'].append(stability_threshold(jac, 'euler'))
    out['rk4_true'].append(stability_threshold(jac, 'rk4'))
  res = {k: np.array(v) for k, v in out.items()}
  res.update(lambdas=np.asarray(lambdas, np.float64), w=w)
  return res


def lq_band(lam: float = 1.0, ratios: Sequence[float] = tuple(np.geomspace(0.1, 1e4, 161)), d: int = 64,
            a: float = 10.0, b: float = 0.05, seed: int = 12345) -> dict[str, np.ndarray]:
  """``alpha*(r)`` and ``alpha_true(r)`` over weight ratios at one coupling, with the closed-form band."""
  d1 = d // 2
  base = lq_coupling_matrix(d1, seed)
  jac = lq_jacobian(lam, np.eye(d1), np.eye(d1), base, a, b)
  mu, coupling = block_bounds(jac, (d1, d1))
  ratios = np.asarray(ratios, np.float64)
  alpha_true = np.array([metric_constants(jac, metric((1.0, r), (d1, d1)))[0] for r in ratios])
  return {'lam': lam, 'ratios': ratios, 'alpha_sgn': two_player_margin(mu, coupling, ratios),
          'alpha_true': alpha_true, 'band': np.array(two_player_band(mu, coupling)), 'mu': mu, 'L': coupling,
          'r_opt': optimal_weights(mu, coupling)[0][1]}


def lq_phase(lambdas: Sequence[float], multipliers: Sequence[float] = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0),
             d: int = 64, a: float = 10.0, b: float = 0.05, seed: int = 12345, steps: int = 800,
             num_pairs: int = 16) -> dict[str, Any]:
  """Simulated Euler and RK4 runs at ``h = c * (certified step)`` for each coupling: contraction or not.

  For each method and ``lambda`` with a positive certificate, the ``M``-norm contraction of ``num_pairs``
  random differences over ``steps`` steps is measured; Euler's measured per-step ratio is compared with the
  certified factor ``sqrt(1 - 2 h alpha + h^2 beta^2)``.
  """
  sweep = lq_sweep(lambdas, d, a, b, seed=seed)
  d1 = d // 2
  base = lq_coupling_matrix(d1, seed)
  m = metric(sweep['w'], (d1, d1))
  records = []
  for i, lam in enumerate(sweep['lambdas']):
    jac = lq_jacobian(lam, np.eye(d1), np.eye(d1), base, a, b)
    for method, bound in (('euler', sweep['euler_bound'][i]), ('rk4', sweep['rk4_guideline'][i])):
      if bound <= 0:
        continue
      for c in multipliers:
        h = c * bound
        sim = simulate_contraction(jac, m, h, method, steps, num_pairs, seed=i)
        rec = {'lam': float(lam), 'method': method, 'multiplier': float(c), 'h': float(h),
               'rho': spectral_radius(step_matrix(jac, h, method)), 'rate': sim['rate'],
               'max_ratio': sim['max_ratio']}
        if method == 'euler':
          rec['certified_factor'] = float(euler_factor(h, sweep['alpha_sgn'][i], sweep['beta'][i]))
        records.append(rec)
  return {'sweep': sweep, 'records': records}


def lq_random_suite(lambdas: Sequence[float] = tuple(np.linspace(0, 2.5, 7)), num_games: int = 30,
                    d: int = 64, a: float = 10.0, b: float = 0.05, mu0: float = 1.0, seed: int = 12345
                    ) -> dict[str, np.ndarray]:
  """Random LQ games ``Q_i = R_i^T R_i + mu0 I`` (Gaussian ``R_i``), ``||R||_2 = 1``: certification rates.

  ``mu_i = lambda_min(Q_i)`` and ``L_12 = lambda a``, ``L_21 = lambda b``; weights ``w_2 / w_1 = a / b``.
  """
  d1 = d // 2
  w = np.array([1.0, a / b])
  m = metric(w, (d1, d1))
  euc, sgn, true = (np.zeros((num_games, len(lambdas))) for _ in range(3))
  for s in range(num_games):
    rng = np.random.default_rng(seed + 1000 * s)
    r1, r2 = rng.standard_normal((d1, d1)), rng.standard_normal((d1, d1))
    q1, q2 = r1.T @ r1 + mu0 * np.eye(d1), r2.T @ r2 + mu0 * np.eye(d1)
    base = rng.standard_normal((d1, d1))
    base /= np.linalg.norm(base, 2)
    for j, lam in enumerate(lambdas):
      jac = lq_jacobian(lam, q1, q2, base, a, b)
      mu, coupling = block_bounds(jac, (d1, d1))
      euc[s, j] = euclidean_margin(jac)
      sgn[s, j] = sgn_margin(mu, coupling, w)
      true[s, j] = metric_constants(jac, m)[0]
  return {'lambdas': np.asarray(lambdas, np.float64), 'gamma_euc': euc, 'alpha_sgn': sgn, 'alpha_true': true,
          'rate_euclidean': (euc > 0).mean(0), 'rate_sgn': (sgn > 0).mean(0), 'rate_true': (true > 0).mean(0)}


# The entropy-regularised Markov game (Fisher geometry, natural policy gradient).

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


@_float64
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
    of ``theta*`` (which also counts runs on a bounded orbit around it, or reaching another equilibrium). The empirical limit is the largest ``eta``
    (bisection after the multiplier scan) at which every seed converges strictly; next to it, the exact
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
    inv_half = _block_diag([_sqrt_pair(f)[1] for f in fis])
    mu_k, l_k = block_bounds(inv_half @ jac @ inv_half, (2, 2))
    mus.append(mu_k)
    couplings.append(l_k)
  mu, coupling = np.min(mus, axis=0), np.max(couplings, axis=0)
  ratios = np.asarray(ratios, np.float64)
  alphas = two_player_margin(mu, coupling, ratios)
  best = int(np.argmax(alphas))
  alpha, r_best = float(alphas[best]), float(ratios[best])
  w = np.array([1.0, r_best])
  beta = max(metric_constants(jac, metric(w, (2, 2), fis), _block_diag(fis))[1] for jac, fis in zip(jacs, fishers))
  eta_max = euler_step_bound(alpha, beta)
  jac_star, fis_star = (np.asarray(x) for x in _markov_geometry(z, args))
  eta_lin = stability_threshold(np.linalg.solve(_block_diag(fis_star), jac_star), 'euler')
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


# Plots.

def plot_margins(sweep: dict, ax=None):
  """Euclidean, SGN and true margins against the coupling ``lambda``."""
  import matplotlib.pyplot as plt
  ax = ax or plt.subplots(figsize=(5, 3.5))[1]
  ax.plot(sweep['lambdas'], sweep['gamma_euc'], 'k--', label=r'Euclidean $\gamma_{\min}$')
  ax.plot(sweep['lambdas'], sweep['alpha_true'], 'b-', label=r'true $\alpha_{true}$')
  ax.plot(sweep['lambdas'], sweep['alpha_sgn'], 'g-.', label=r'SGN $\alpha_*$')
  ax.axhline(0, color='0.5', lw=0.8)
  ax.set(xlabel=r'coupling $\lambda$', ylabel='margin', ylim=(-1, 1.1), title='LQ game: margins')
  ax.legend()
  return ax


def plot_band(band: dict, ax=None):
  """``alpha*(r)`` and ``alpha_true(r)`` against ``r = w_2 / w_1`` with the certified band shaded."""
  import matplotlib.pyplot as plt
  ax = ax or plt.subplots(figsize=(5, 3.5))[1]
  ax.semilogx(band['ratios'], band['alpha_true'], label=r'true $\alpha_{true}(r)$')
  ax.semilogx(band['ratios'], band['alpha_sgn'], '--', label=r'SGN $\alpha_*(r)$')
  lo, hi = band['band']
  if np.isfinite(lo):
    ax.axvspan(lo, hi, color='tab:orange', alpha=0.15, label='band (closed form)')
    ax.axvline(lo, color='tab:orange', ls=':')
    ax.axvline(hi, color='tab:orange', ls=':')
  ax.axhline(0, color='0.5', lw=0.8)
  ax.set(xlabel=r'$r = w_2 / w_1$', ylabel='margin', title=f"timescale band at $\\lambda$ = {band['lam']}",
         ylim=(max(-3, np.min(band['alpha_sgn'])), None))
  ax.legend()
  return ax


def plot_phase(phase: dict, method: str = 'euler', ax=None):
  """The ``(lambda, h)`` plane: true threshold, certified step, simulated runs (filled = contracted)."""
  import matplotlib.pyplot as plt
  ax = ax or plt.subplots(figsize=(5, 3.5))[1]
  sweep = phase['sweep']
  bound = sweep['euler_bound' if method == 'euler' else 'rk4_guideline']
  ax.plot(sweep['lambdas'], sweep[f'{method}_true'], 'r-', lw=2, label='true stability')
  ax.plot(sweep['lambdas'], bound, '--', color='tab:orange', label='SGN ' + ('bound' if method == 'euler'
                                                                              else 'guideline'))
  recs = [r for r in phase['records'] if r['method'] == method]
  ok = [r for r in recs if r['rate'] < 1]
  bad = [r for r in recs if r['rate'] >= 1]
  ax.scatter([r['lam'] for r in ok], [r['h'] for r in ok], s=12, c='tab:green', label='simulated: contracts')
  ax.scatter([r['lam'] for r in bad], [r['h'] for r in bad], s=12, marker='x', c='k', label='simulated: not')
  ax.axvspan(0, sweep['lambdas'][np.argmax(sweep['gamma_euc'] <= 0)], color='0.9', label='Euclidean monotone')
  ax.set(xlabel=r'coupling $\lambda$', ylabel='step $h$', title=f'LQ game: {method} phase diagram',
         ylim=(0, 1.2 * np.max(sweep[f'{method}_true'])))
  ax.legend(fontsize=7)
  return ax


def plot_markov(res: dict, axes=None):
  """Markov game: ``alpha*(r)`` with its band, and convergence probability against ``eta / eta_max``."""
  import matplotlib.pyplot as plt
  axes = axes if axes is not None else plt.subplots(1, 2, figsize=(10, 3.5))[1]
  ax = axes[0]
  ax.semilogx(res['ratios'], res['alpha_of_r'], 'g--', label=r'$\alpha_*(r)$')
  lo, hi = res['band']
  if np.isfinite(lo):
    ax.axvspan(lo, hi, color='tab:orange', alpha=0.15, label='band')
  ax.axhline(0, color='0.5', lw=0.8)
  ax.set(xlabel=r'$r = w_2/w_1$', ylabel='SGN margin', title='Markov game: Fisher-metric band')
  ax.legend()
  ax = axes[1]
  ax.semilogx(res['multipliers'], res['convergence_strict'], 'o-', label=r'NPG: reaches $\theta^*$')
  ax.semilogx(res['multipliers'], res['convergence_official'], 's:', ms=4, label='NPG: official criterion')
  ax.axvline(1, color='k', ls='--', label=r'certified $\eta_{\max}$')
  ax.axvline(res['eta_linear'] / res['eta_max'], color='r', ls=':', label='exact linear threshold')
  ax.set(xlabel=r'$\eta / \eta_{\max}$', ylabel='P(converge)', title='Markov game: NPG stability')
  ax.legend(fontsize=7)
  return axes
