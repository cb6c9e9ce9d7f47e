"""ADMM for the convex program of two-layer ReLU training (Bai, Gautam & Sojoudi, arXiv 2201.01965, Algorithm 3.1).

Stack ``u = (v_1..v_P, w_1..w_P)``; ``F = [D_1 X .. D_P X, -D_1 X .. -D_P X]`` and ``G = blockdiag((2 D_i - I) X)``
over both halves. The program is ``min (1/2)||F u - y||^2 + beta sum_i ||v_i|| + 1[s >= 0]`` with the splits
``u = v`` and ``G u = s``; with scaled duals ``lambda, nu`` and penalty ``rho`` one iteration is

    u <- (I + F^T F / rho + G^T G)^{-1} (F^T y / rho + v - lambda + G^T (s - nu))     (Cholesky, factored once)
    v_i <- max(0, 1 - beta / (rho ||u_i + lambda_i||)) (u_i + lambda_i)                   (group soft threshold)
    s <- max(0, G u + nu)
    lambda <- lambda + gamma (u - v),     nu <- nu + gamma (G u - s).

After the one factorisation an iteration costs ``O((d P)^2 + n d P)``: quadratic, the paper's point. Convention:
the dual step is ``gamma`` (``dual_step``, default 1: the scaled-form ADMM of Boyd et al. whose updates above are);
the third-party implementation ``zachary-shah/admmNN`` writes it ``step / rho`` (pass ``dual_step=step / rho``).
The paper's default ``rho`` and ``gamma`` were not retrievable here; ``rho`` is an argument.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from theory.numerics import float64


def admm_matrices(x: np.ndarray, patterns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """``F (n, 2 P d)`` and ``G (2 P n, 2 P d)`` of the module docstring (``v`` blocks first, then ``w``); dense, for
  checks on small cases (the solver applies ``G`` blockwise and uses ``G^T G = I_{2P} (x) X^T X``)."""
  n, d = x.shape
  p = patterns.shape[1]
  dx = [patterns[:, i, None] * x for i in range(p)]
  f = np.hstack(dx + [-b for b in dx])
  g = np.zeros((2 * p * n, 2 * p * d))
  for k in range(2 * p):
    i = k % p
    g[k * n:(k + 1) * n, k * d:(k + 1) * d] = (2 * patterns[:, i, None] - 1) * x
  return f, g


@float64
def admm(x: np.ndarray, y: np.ndarray, patterns: np.ndarray, beta: float, rho: float = 1.0,
         dual_step: float = 1.0, iterations: int = 200) -> dict:
  """Runs :mod:`Algorithm 3.1 <theory.convex_relu.admm_solver>` for ``iterations`` steps from zero.

  ``G`` is never formed: ``(2 D_i - I)^2 = I`` makes ``G^T G = I_{2P} (x) X^T X``, and ``G u`` is
  ``(2 D_i - I) X u_k`` block by block.

  Returns:
    ``{'v', 'w' (P, d): the group-sparse iterate, 'u_v', 'u_w': the u-iterate, 'objective' (iterations,): the
    convex objective at the v-iterate, 'primal_residual' (iterations,): ||u - v|| + ||G u - s||}``.
  """
  if rho <= 0 or dual_step <= 0:
    raise ValueError(f'convex_relu.admm: rho and dual_step must be positive, got {rho}, {dual_step}')
  n, d = x.shape
  p = patterns.shape[1]
  xj, y = jnp.asarray(x, jnp.float64), jnp.asarray(y, jnp.float64)
  dmask = jnp.asarray(patterns, jnp.float64)
  signs = jnp.concatenate([2 * dmask - 1, 2 * dmask - 1], axis=1).T          # (2P, n)
  f = jnp.concatenate([jnp.hstack([dmask[:, i, None] * xj for i in range(p)]),
                       -jnp.hstack([dmask[:, i, None] * xj for i in range(p)])], axis=1)
  a = jnp.eye(2 * p * d) + f.T @ f / rho + jnp.kron(jnp.eye(2 * p), xj.T @ xj)
  chol = jax.scipy.linalg.cho_factor(a, lower=True)
  fty = f.T @ y / rho

  def g_apply(u):        # (2P d,) -> (2P, n)
    return signs * (u.reshape(2 * p, d) @ xj.T)

  def gt_apply(r):       # (2P, n) -> (2P d,)
    return ((signs * r) @ xj).reshape(-1)

  def objective(vv):
    r = f @ vv - y
    return 0.5 * r @ r + beta * jnp.sum(jnp.linalg.norm(vv.reshape(2 * p, d), axis=1))

  def step(carry, _):
    v, s, lam, nu = carry
    u = jax.scipy.linalg.cho_solve(chol, fty + v - lam + gt_apply(s - nu))
    t = (u + lam).reshape(2 * p, d)
    norms = jnp.linalg.norm(t, axis=1, keepdims=True)
    v = (jnp.maximum(0.0, 1.0 - beta / (rho * jnp.maximum(norms, 1e-300))) * t).reshape(-1)
    gu = g_apply(u)
    s = jnp.maximum(0.0, gu + nu)
    lam = lam + dual_step * (u - v)
    nu = nu + dual_step * (gu - s)
    res = jnp.linalg.norm(u - v) + jnp.linalg.norm(gu - s)
    return (v, s, lam, nu), (objective(v), res)

  def run(carry):
    carry, hist = jax.lax.scan(step, carry, None, length=iterations)
    return carry, hist

  zeros_u, zeros_s = jnp.zeros(2 * p * d), jnp.zeros((2 * p, n))
  (v, s, lam, nu), (obj, res) = jax.jit(run)((zeros_u, zeros_s, zeros_u, zeros_s))
  u = jax.scipy.linalg.cho_solve(chol, fty + v - lam + gt_apply(s - nu))
  blocks = np.asarray(v).reshape(2 * p, d)
  u_last = np.asarray(u).reshape(2 * p, d)
  return {'v': blocks[:p], 'w': blocks[p:], 'u_v': u_last[:p], 'u_w': u_last[p:], 'objective': np.asarray(obj),
          'primal_residual': np.asarray(res)}
