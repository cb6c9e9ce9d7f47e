"""FZooS: federated zeroth-order optimisation with trajectory-informed surrogate gradients, and FedZO (SPSA).

Shu, Lin, Dai & Low, "Federated Zeroth-Order Optimization using Trajectory-Informed Surrogate Gradients"
(arXiv 2308.04077; official code: shuyao95/FZooS). N clients minimise F(x) = sum_i w_i f_i(x) with only function
queries of their own f_i. Each client keeps its query history {(x_j, f_i(x_j))} (its trajectory) and builds:

- **the local surrogate gradient**: the gradient of a GP posterior mean fitted to the ``num_nearest`` past queries
  nearest the current point, outputs min-max normalised (the code's rule), kernel
  k(x, x') = exp(-|x - x'|^2 / (2 l^2)):

      grad mu_i(x) = (y_max - y_min) sum_j alpha_j k(x, x_j) (x_j - x) / l^2,
      alpha = (K + sigma^2 I)^{-1} (y - y_min) / (y_max - y_min);

- **the communicated surrogate**: random Fourier features phi(x) = sqrt(2/M) cos(x W + b), W ~ N(0, I/l^2),
  b ~ U[0, 2 pi] (the same seed on every client, or averaging is meaningless), least-squares weights nu_i with
  phi(x_j) nu_i ~ f_i(x_j) - min f_i on the ``rff_queries`` nearest queries (min-norm, the code's Ridge(alpha=0));
  grad f^_i(x) = -sqrt(2/M) W (sin(x W + b) * nu_i). A client sends nu_i (M numbers, independent of d); the
  server's global surrogate is nu = sum_i w_i nu_i, grad F^(x) the same formula with nu.

**Adaptive gradient correction.** Local step t of round r starts from the server's x and uses

    g_{i,t} = grad mu_i(x_{i,t}) + gamma_t (grad F^(x_{i,t}) - grad f^_i(x_{i,t})),   gamma_t = gamma / (t + 1),

evaluated at the current local point (a SCAFFOLD-like control variate built from surrogates), then one step of
the local optax optimiser (the code: Adam, lr 0.1), then one query f_i(x_{i,t+1}) that joins the history, plus
``explore_per_step`` queries near it. The server averages: x <- x - eta sum_i w_i (x - x_i).

Conventions. The decaying gamma_t = gamma/(t+1) and the de-normalised weighted average of nu_i are the official
code's (``fzoos_opt.update``, ``FedZoo.update``); the paper writes a fixed gamma (``gamma_decay=False``). The code
uses a Matern-5/2 GP with a lengthscale fitted by 20 marginal-likelihood restarts and differentiates its mean by
finite differences; here the local GP uses the same RBF kernel as the random features, a fixed lengthscale and the
analytic gradient. The code chooses its exploration queries by maximal GP gradient variance among 200 (or 100)
uniform candidates; here they are drawn uniformly in a box of half-width ``explore_radius`` (cheaper, and the
query count is the same). Everything runs host-side in float64 NumPy: a GP fit is a small dense solve per step.

The baseline :func:`fedzo` runs the same rounds with SPSA gradients (``optim.primitives.spsa.spsa_gradient``,
``num_directions`` Gaussian directions, 2 queries each) in place of the surrogates.

>>> import numpy as np
>>> xs = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]); ys = np.array([0.0, 1.0, 1.0])
>>> gp_mean_gradient(xs, ys, np.array([0.5, 0.5]), lengthscale=1.0).round(3).tolist()
[0.747, 0.747]
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from decentral import checks
from optim.primitives import spsa


class RandomFeatures(NamedTuple):
  """phi(x) = sqrt(2/M) cos(x W + b): ``weights`` W (d, M), ``offset`` b (M,)."""

  weights: np.ndarray
  offset: np.ndarray


def random_features(dim: int, num_features: int, *, lengthscale: float = 1.0, seed: int = 0) -> RandomFeatures:
  """Random Fourier features of the RBF kernel exp(-|x - x'|^2 / (2 l^2)): W ~ N(0, I / l^2), b ~ U[0, 2 pi]."""
  checks.positive_int(dim, 'random_features: dim')
  checks.positive_int(num_features, 'random_features: num_features')
  checks.positive_finite(lengthscale, 'random_features: lengthscale')
  rng = np.random.default_rng(seed)
  return RandomFeatures(rng.normal(size=(dim, num_features)) / lengthscale,
                        rng.uniform(0.0, 2 * np.pi, size=num_features))


def feature_map(rf: RandomFeatures, xs: np.ndarray) -> np.ndarray:
  """phi(xs), shape (n, M)."""
  return np.sqrt(2.0 / rf.offset.shape[0]) * np.cos(np.atleast_2d(xs) @ rf.weights + rf.offset)


def fit_feature_weights(rf: RandomFeatures, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
  """nu: the min-norm least-squares fit phi(xs) nu ~ ys - min(ys) (the gradient ignores the offset)."""
  ys = np.asarray(ys, np.float64)
  phi = feature_map(rf, xs)
  if phi.shape[0] > phi.shape[1]:
    return np.linalg.lstsq(phi, ys - ys.min(), rcond=None)[0]
  # n <= M: the min-norm solution phi^T (phi phi^T)^{-1} y, an n x n solve (an SVD of phi is far slower);
  # a 1e-10 relative jitter keeps the Gram matrix invertible when two queries coincide.
  gram = phi @ phi.T
  gram[np.diag_indices_from(gram)] += 1e-10 * np.trace(gram) / len(gram)
  return phi.T @ np.linalg.solve(gram, ys - ys.min())


def feature_gradient(rf: RandomFeatures, nu: np.ndarray, x: np.ndarray) -> np.ndarray:
  """grad_x phi(x) nu = -sqrt(2/M) W (sin(x W + b) * nu)."""
  return -np.sqrt(2.0 / rf.offset.shape[0]) * rf.weights @ (np.sin(x @ rf.weights + rf.offset) * nu)


def rbf_kernel(a: np.ndarray, b: np.ndarray, lengthscale: float) -> np.ndarray:
  sq = np.sum(a ** 2, 1)[:, None] + np.sum(b ** 2, 1)[None, :] - 2 * a @ b.T
  return np.exp(-np.maximum(sq, 0.0) / (2 * lengthscale ** 2))


def gp_mean_gradient(xs: np.ndarray, ys: np.ndarray, x: np.ndarray, *, lengthscale: float = 1.0,
                     noise: float = 1e-6) -> np.ndarray:
  """grad mu(x) of the GP posterior mean on (xs, ys), outputs min-max normalised and mapped back (module doc)."""
  xs, ys = np.asarray(xs, np.float64), np.asarray(ys, np.float64)
  lo, span = ys.min(), ys.max() - ys.min()
  span = span if span > 0 else 1.0
  gram = rbf_kernel(xs, xs, lengthscale) + noise * np.eye(len(xs))
  alpha = np.linalg.solve(gram, (ys - lo) / span)
  k = rbf_kernel(x[None], xs, lengthscale)[0]
  return span * ((alpha * k) @ (xs - x)) / lengthscale ** 2


def nearest(xs: np.ndarray, ys: np.ndarray, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
  """The k queries of the history nearest x (the code's ``local_queries``)."""
  idx = np.argsort(np.linalg.norm(xs - x, axis=1), kind='stable')[:k]
  return xs[idx], ys[idx]


class History:
  """One client's query history and its query count."""

  def __init__(self, f: Callable[[np.ndarray], float], dim: int):
    self.f, self.xs, self.ys = f, np.zeros((0, dim)), np.zeros(0)

  def query(self, points: np.ndarray) -> None:
    points = np.atleast_2d(points)
    self.xs = np.concatenate([self.xs, points])
    self.ys = np.concatenate([self.ys, [float(self.f(p)) for p in points]])

  @property
  def queries(self) -> int:
    return len(self.ys)


def _check_weights(fs, weights):
  if weights is None:
    return np.full(len(fs), 1.0 / len(fs))
  w = np.asarray(weights, np.float64)
  if w.shape != (len(fs),) or np.any(w < 0) or not np.isclose(w.sum(), 1.0):
    raise ValueError(f'fzoos: weights must be {len(fs)} non-negative numbers summing to 1, got {weights!r}')
  return w


def _local_opt(local_optimizer, learning_rate):
  return optax.adam(learning_rate) if local_optimizer is None else local_optimizer


def _step(opt, state, g, x):
  u, state = opt.update(jnp.asarray(g), state, jnp.asarray(x))
  return np.asarray(x + np.asarray(u, np.float64)), state


def fzoos(fs: Sequence[Callable[[np.ndarray], float]], x0: np.ndarray, *, rounds: int, local_steps: int,
          learning_rate: float = 0.1, server_lr: float = 1.0, weights=None, lengthscale: float = 1.0,
          noise: float = 1e-6, num_nearest: int = 150, num_features: int = 1000, rff_queries: int = 500,
          round_explore: int = 50, explore_per_step: int = 5, explore_radius: float = 0.02,
          gamma: float = 1.0, gamma_decay: bool = True, correction: bool = True, local_optimizer=None,
          seed: int = 0, callback: Callable[[int, np.ndarray, int], None] | None = None) -> np.ndarray:
  """Runs FZooS (module docstring) from ``x0``; returns the final server point.

  Args:
    fs: the clients' black-box functions f_i (numpy point -> float).
    x0: the starting point.
    rounds, local_steps: R communication rounds of K local steps.
    learning_rate: of the local optimiser (Adam unless ``local_optimizer`` is given).
    server_lr: eta.
    weights: w_i (uniform by default).
    lengthscale, noise: the RBF kernel's l (local GP and random features) and the GP noise sigma^2.
    num_nearest: queries the local GP is fitted on (the code: 150).
    num_features, rff_queries: M random features; queries the weights nu_i are fitted on (the code: 10000, 500).
    round_explore: queries near x at the start of a round, before fitting nu_i (the code: 50).
    explore_per_step, explore_radius: extra queries after each local step and their box half-width.
    gamma, gamma_decay: the correction weight, decayed as gamma/(t+1) (the code) or fixed (the paper).
    correction: False runs the local surrogate alone (no communicated surrogate: FedAvg with GP gradients).
    local_optimizer: an optax transform (overrides ``learning_rate``).
    seed: the shared random-feature seed and the exploration seed.
    callback: ``callback(round, x, total_queries)`` after every round (and at round 0 before training).
  """
  for name in ('rounds', 'local_steps', 'num_nearest', 'num_features', 'rff_queries'):
    checks.positive_int(locals()[name], f'fzoos: {name}')
  for name in ('learning_rate', 'server_lr', 'lengthscale', 'explore_radius'):
    checks.positive_finite(locals()[name], f'fzoos: {name}')
  w = _check_weights(fs, weights)
  x = np.asarray(x0, np.float64).copy()
  dim = x.shape[0]
  rng = np.random.default_rng(seed + 1)
  rf = random_features(dim, num_features, lengthscale=lengthscale, seed=seed)
  clients = [History(f, dim) for f in fs]
  opt = _local_opt(local_optimizer, learning_rate)

  def explore(center, num):
    return center + explore_radius * rng.uniform(-1, 1, size=(num, dim))

  if callback is not None:
    callback(0, x, 0)
  for r in range(rounds):
    nus = []
    for h in clients:
      h.query(np.concatenate([x[None], explore(x, round_explore)]))
      if correction:
        nus.append(fit_feature_weights(rf, *nearest(h.xs, h.ys, x, rff_queries)))
    nu = sum(wi * n for wi, n in zip(w, nus)) if correction else None
    ends = []
    for i, h in enumerate(clients):
      xi, state = x.copy(), opt.init(jnp.asarray(x))
      for t in range(local_steps):
        g = gp_mean_gradient(*nearest(h.xs, h.ys, xi, num_nearest), xi, lengthscale=lengthscale, noise=noise)
        if correction:
          gt = gamma / (t + 1) if gamma_decay else gamma
          g = g + gt * (feature_gradient(rf, nu, xi) - feature_gradient(rf, nus[i], xi))
        xi, state = _step(opt, state, g, xi)
        h.query(xi)
        if explore_per_step and t < local_steps - 1:
          h.query(explore(xi, explore_per_step))
      ends.append(xi)
    x = x - server_lr * sum(wi * (x - xi) for wi, xi in zip(w, ends))
    if callback is not None:
      callback(r + 1, x, sum(h.queries for h in clients))
  return x


def fedzo(fs: Sequence[Callable], x0: np.ndarray, *, rounds: int, local_steps: int, learning_rate: float = 0.1,
          server_lr: float = 1.0, weights=None, num_directions: int = 10, epsilon: float = 1e-3,
          local_optimizer=None, seed: int = 0,
          callback: Callable[[int, np.ndarray, int], None] | None = None) -> np.ndarray:
  """FedZO: FedAvg whose clients step with SPSA gradients (``optim.primitives.spsa.spsa_gradient``).

  g_{i,t} = (1/q) sum_k (f_i(x + eps z_k) - f_i(x - eps z_k)) / (2 eps) z_k, z_k ~ N(0, I), 2q queries per step;
  ``fs`` must be traceable by JAX (jnp operations). The FZooS code's RGF baseline uses q orthonormalised
  directions and forward differences; this is the estimator ``optim`` ships. Other arguments as :func:`fzoos`.
  """
  for name in ('rounds', 'local_steps', 'num_directions'):
    checks.positive_int(locals()[name], f'fedzo: {name}')
  w = _check_weights(fs, weights)
  x = np.asarray(x0, np.float64).copy()
  opt = _local_opt(local_optimizer, learning_rate)
  grads = [jax.jit(lambda p, k, f=f: spsa.spsa_gradient(f, p, k, epsilon=epsilon, num_samples=num_directions)[0])
           for f in fs]
  key, queries = jax.random.key(seed), 0
  if callback is not None:
    callback(0, x, 0)
  for r in range(rounds):
    ends = []
    for i in range(len(fs)):
      xi, state = x.copy(), opt.init(jnp.asarray(x))
      for t in range(local_steps):
        g = np.asarray(grads[i](jnp.asarray(xi), jax.random.fold_in(key, (r * len(fs) + i) * local_steps + t)))
        xi, state = _step(opt, state, g, xi)
        queries += 2 * num_directions
      ends.append(xi)
    x = x - server_lr * sum(wi * (x - xi) for wi, xi in zip(w, ends))
    if callback is not None:
      callback(r + 1, x, queries)
  return x
