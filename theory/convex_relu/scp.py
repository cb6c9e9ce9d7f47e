"""The unconstrained "sampled convex program" variant (Bai, Gautam & Sojoudi, arXiv 2201.01965): drop the cone
constraints and train a gated-ReLU network whose gates are the sampled ``h_i``,

    min_{u_i}  (1/2) || sum_i D_i X u_i - y ||^2 + beta sum_i ||u_i||_2,      D_i = diag(1[X h_i >= 0]),

predicting ``f(x) = sum_i 1[x^T h_i >= 0] x^T u_i``. The paper's sampled-convex-program theory bounds how many
gates make this classifier approximately globally optimal (the bound itself is not implemented); its objective is
never above the constrained program's over the same patterns (it is a relaxation). Solved here by FISTA with the
group soft threshold, step ``1 / ||F||_2^2``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from theory.numerics import float64


@float64
def gated_relu_fista(x: np.ndarray, y: np.ndarray, patterns: np.ndarray, beta: float,
                     iterations: int = 500) -> dict:
  """FISTA on the gated-ReLU program; returns ``{'u' (P, d), 'objective' (iterations,)}``."""
  n, d = x.shape
  p = patterns.shape[1]
  f = jnp.asarray(np.hstack([patterns[:, i, None] * x for i in range(p)]))
  y = jnp.asarray(y, jnp.float64)
  step = 1.0 / float(np.linalg.norm(np.asarray(f), 2) ** 2)

  def objective(u):
    r = f @ u - y
    return 0.5 * r @ r + beta * jnp.sum(jnp.linalg.norm(u.reshape(p, d), axis=1))

  def prox(z):
    blocks = z.reshape(p, d)
    norms = jnp.linalg.norm(blocks, axis=1, keepdims=True)
    return (jnp.maximum(0.0, 1.0 - step * beta / jnp.maximum(norms, 1e-300)) * blocks).reshape(-1)

  def body(carry, _):
    u, z, t = carry
    u_new = prox(z - step * f.T @ (f @ z - y))
    t_new = 0.5 * (1 + jnp.sqrt(1 + 4 * t * t))
    z = u_new + (t - 1) / t_new * (u_new - u)
    return (u_new, z, t_new), objective(u_new)

  zero = jnp.zeros(p * d)
  (u, _, _), obj = jax.jit(lambda c: jax.lax.scan(body, c, None, length=iterations))((zero, zero, 1.0))
  return {'u': np.asarray(u).reshape(p, d), 'objective': np.asarray(obj)}


def gated_relu_predict(x: np.ndarray, gates: np.ndarray, u: np.ndarray) -> np.ndarray:
  """``sum_i 1[x^T h_i >= 0] x^T u_i`` for new inputs ``x`` (``gates (d, P)``)."""
  return np.sum((x @ gates >= 0) * (x @ u.T), axis=1)
