"""Learning rates as a function of batch size: the Marchenko-Pastur version of the batch Hessian, and the
linear (SGD) and square-root (Adam) scaling rules, against a measured sweep (Granziol, Zohren & Roberts, arXiv
2006.09092).

**Batch Hessian as a sample covariance.** For least squares ``l = (1/2B) ||X_B w - y_B||^2`` the batch Hessian is
``H_B = X_B^T X_B / B``. With rows ``x ~ N(0, Sigma)``, ``Sigma = I + (s - 1) e e^T`` (one spike ``s`` on a unit
bulk), and ``gamma = d / B``, its spectrum follows the Marchenko-Pastur law of ratio ``gamma``, density::

    rho(x) = sqrt((x_+ - x)(x - x_-)) / (2 pi gamma x)  on  [x_-, x_+] = [(1 - sqrt(gamma))^2, (1 + sqrt(gamma))^2]

(plus an atom ``1 - 1/gamma`` at 0 when ``gamma > 1``), and its top eigenvalue the BBP rule: ``s (1 + gamma /
(s - 1))`` when ``s > 1 + sqrt(gamma)``, else the edge ``x_+``. This is the Wishart analogue of the paper's spiked
Wigner model (theory.hessian.batch_hessians), exact for this model as ``d, B -> infinity`` at fixed ``gamma``.
For ``B << d``, ``lambda_max(H_B) ~ d / B``: the batch Hessian is sharper than the full one by a factor ``1/B``.

**Learning-rate rules.** The step ``2 / lambda_max(H_B)`` then grows *linearly* in ``B`` (SGD); the paper's
square-root rule for Adam follows from its preconditioner ``sqrt(E g_B^2) ~ 1/sqrt(B)`` in the noise-dominated
regime, i.e. ``eta_Adam ~ sqrt(B)``. For online SGD on this model the mean-square stability threshold is also
exact: ``E (I - eta H_B)^2 = I - 2 eta Sigma + eta^2 (Sigma^2 + (Sigma^2 + Sigma tr Sigma) / B)`` (Gaussian fourth
moments), which for ``Sigma = I`` is stable iff ``eta < 2 B / (B + d + 1)`` (:func:`sgd_stability_threshold`).

**Sweep** (:func:`lr_scaling_sweep`): online least squares (fresh Gaussian batches every step, label noise),
``K`` steps of SGD and of Adam (``optax``; ``b1 = 0.9, b2 = 0.999, eps = 1e-8``) on a log grid of learning rates
for every ``B``; the *best* learning rate minimises the exact population loss after ``K`` steps (median over
seeds), and the *largest stable* one is the largest whose loss ends below the initial loss (Adam's steps are
bounded by about ``eta`` per coordinate, so for Adam this is where the oscillation floor reaches the initial
loss rather than a divergence). Slopes are
least-squares fits of ``log eta`` against ``log B``. Assumptions: the step budget ``K`` is fixed across ``B`` (the
paper's rule compares fixed-step runs; at a fixed epoch budget the comparison differs), no warm-up.
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from theory.numerics import float64


def marchenko_pastur_edges(gamma: float) -> tuple[float, float]:
  """``((1 - sqrt(gamma))^2, (1 + sqrt(gamma))^2)``.

  Example:
    >>> marchenko_pastur_edges(0.25)
    (0.25, 2.25)
  """
  r = math.sqrt(gamma)
  return (1 - r) ** 2, (1 + r) ** 2


def marchenko_pastur_density(x, gamma: float) -> np.ndarray:
  """The continuous part of the MP density of ratio ``gamma`` (mass ``min(1, 1/gamma)``), zero off the support."""
  lo, hi = marchenko_pastur_edges(gamma)
  x = np.asarray(x, np.float64)
  inside = (x > lo) & (x < hi)
  out = np.zeros_like(x)
  out[inside] = np.sqrt((hi - x[inside]) * (x[inside] - lo)) / (2 * math.pi * gamma * x[inside])
  return out


def spiked_top_eigenvalue(spike: float, gamma: float) -> float:
  """BBP: ``s (1 + gamma / (s - 1))`` if ``s > 1 + sqrt(gamma)``, else ``(1 + sqrt(gamma))^2``.

  Example:
    >>> spiked_top_eigenvalue(5.0, 1.0), spiked_top_eigenvalue(1.5, 1.0)
    (6.25, 4.0)
  """
  if spike > 1 + math.sqrt(gamma):
    return spike * (1 + gamma / (spike - 1))
  return marchenko_pastur_edges(gamma)[1]


def sgd_stability_threshold(batch_size: int, dim: int) -> float:
  """Exact mean-square stability threshold of online SGD on isotropic Gaussian least squares: ``2B / (B + d + 1)``.

  Example:
    >>> sgd_stability_threshold(1, 8)
    0.2
  """
  return 2.0 * batch_size / (batch_size + dim + 1)


def batch_spectrum(dim: int = 200, batch_sizes: Sequence[int] = (25, 50, 100, 200, 400, 800), spike: float = 1.0,
                   num_batches: int = 20, seed: int = 0) -> dict:
  """Eigenvalues of ``H_B = X_B^T X_B / B`` for Gaussian batches against the MP/BBP predictions.

  Returns ``{'batch_sizes', 'gamma', 'lambda_max' (len(B), num_batches), 'predicted_top', 'mp_edge',
  'eigenvalues' (list of arrays: every eigenvalue of the first batch per B), 'spike', 'dim'}``.
  """
  rng = np.random.default_rng(seed)
  scale = np.ones(dim)
  scale[0] = math.sqrt(spike)
  sizes = np.asarray(batch_sizes)
  lam = np.zeros((len(sizes), num_batches))
  eigs = []
  for i, b in enumerate(sizes):
    for j in range(num_batches):
      xb = rng.normal(size=(b, dim)) * scale
      ev = np.linalg.eigvalsh(xb.T @ xb / b)
      lam[i, j] = ev[-1]
      if j == 0:
        eigs.append(ev)
  gamma = dim / sizes
  return {'batch_sizes': sizes, 'gamma': gamma, 'lambda_max': lam, 'spike': spike, 'dim': dim,
          'predicted_top': np.array([spiked_top_eigenvalue(spike, g) for g in gamma]),
          'mp_edge': np.array([marchenko_pastur_edges(g)[1] for g in gamma]), 'eigenvalues': eigs}


def _final_losses(optimizer, lrs, batch_sizes, dim, steps, noise, seeds, seed):
  # One compilation for every (B, lr, seed): a batch is the first B rows of a (B_max, d) draw (the mask keeps
  # the shapes static), so each B sees i.i.d. Gaussian batches of its own size.
  w_star = jnp.ones(dim) / math.sqrt(dim)
  b_max = int(max(batch_sizes))

  def one(b, lr, key):
    opt = optimizer(lr)
    w = jnp.zeros(dim)
    mask = (jnp.arange(b_max) < b) / b

    def step(carry, t):
      w, state = carry
      kx, ke = jax.random.split(jax.random.fold_in(key, t))
      x = jax.random.normal(kx, (b_max, dim))
      y = x @ w_star + noise * jax.random.normal(ke, (b_max,))
      g = x.T @ (mask * (x @ w - y))
      upd, state = opt.update(g, state, w)
      return (optax.apply_updates(w, upd), state), None

    (w, _), _ = jax.lax.scan(step, (w, opt.init(w)), jnp.arange(steps))
    excess = 0.5 * jnp.sum((w - w_star) ** 2)          # population excess loss, Sigma = I
    return jnp.where(jnp.isfinite(excess), excess, jnp.inf)

  keys = jax.random.split(jax.random.key(seed), seeds)
  per_seed = jax.vmap(one, in_axes=(None, None, 0))
  per_lr = jax.vmap(per_seed, in_axes=(None, 0, None))
  run = jax.jit(jax.vmap(per_lr, in_axes=(0, None, None)))
  return np.asarray(run(jnp.asarray(batch_sizes, jnp.float64), jnp.asarray(lrs), keys))   # (B, lrs, seeds)


@float64
def lr_scaling_sweep(dim: int = 50, batch_sizes: Sequence[int] = (1, 2, 4, 8, 16, 32), steps: int = 300,
                     noise: float = 0.5, num_lrs: int = 25, sgd_lr_range=(1e-3, 2.0), adam_lr_range=(1e-4, 1.0),
                     seeds: int = 4, seed: int = 0, adam: bool = True) -> dict:
  """Best and largest-stable learning rates of SGD and Adam against ``B`` (module docstring).

  ``adam=False`` skips the Adam runs (its entries are then NaN).

  Returns ``{'batch_sizes', 'sgd_best', 'adam_best', 'sgd_max_stable', 'adam_max_stable', 'sgd_threshold'
  (exact), 'mp_threshold' (2 / MP edge), 'slopes': {'sgd_best', 'adam_best', 'sgd_max_stable', 'adam_max_stable',
  'sgd_threshold', 'mp_threshold'},
  'losses_sgd', 'losses_adam' (len(B), num_lrs) medians, 'sgd_lrs', 'adam_lrs', 'initial_loss'}``.
  """
  sgd_lrs, adam_lrs = np.geomspace(*sgd_lr_range, num_lrs), np.geomspace(*adam_lr_range, num_lrs)
  sizes = np.asarray(batch_sizes)
  initial = 0.5
  ls = np.median(_final_losses(optax.sgd, sgd_lrs, sizes, dim, steps, noise, seeds, seed), 2)
  if adam:
    make_adam = lambda lr: optax.adam(lr, b1=0.9, b2=0.999, eps=1e-8)
    la = np.median(_final_losses(make_adam, adam_lrs, sizes, dim, steps, noise, seeds, seed), 2)
  else:
    la = np.full_like(ls, np.nan)
  sgd_best = sgd_lrs[np.argmin(ls, 1)]
  adam_best = adam_lrs[np.argmin(la, 1)] if adam else np.full(len(sizes), np.nan)
  largest = lambda lrs, losses: np.array([lrs[np.flatnonzero(s)[-1]] if s.any() else np.nan for s in losses < initial])
  sgd_max, adam_max = largest(sgd_lrs, ls), largest(adam_lrs, la)
  thr = np.array([sgd_stability_threshold(int(b), dim) for b in sizes])
  mp = np.array([2.0 / marchenko_pastur_edges(dim / b)[1] for b in sizes])
  slope = lambda v: float(np.polyfit(np.log(sizes), np.log(v), 1)[0]) if np.all(np.isfinite(v)) else float('nan')
  return {'batch_sizes': sizes, 'sgd_best': sgd_best, 'adam_best': adam_best, 'sgd_max_stable': sgd_max,
          'adam_max_stable': adam_max,
          'sgd_threshold': thr, 'mp_threshold': mp, 'losses_sgd': ls, 'losses_adam': la, 'sgd_lrs': sgd_lrs,
          'adam_lrs': adam_lrs, 'initial_loss': initial, 'dim': dim, 'steps': steps,
          'slopes': {'sgd_best': slope(sgd_best), 'adam_best': slope(adam_best), 'sgd_max_stable': slope(sgd_max),
                     'adam_max_stable': slope(adam_max),
                     'sgd_threshold': slope(thr), 'mp_threshold': slope(mp)}}
