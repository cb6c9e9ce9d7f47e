"""The perceptron model of SGD noise, where the signal and the noise are exact functions of the weights.

Teacher ``y = sign(x_1)``; data ``x in R^d`` with ``x_1`` of density ``rho(x_1) ~ |x_1|^chi exp(-x_1^2 / 2)``
(``chi = 0`` is Gaussian; larger ``chi`` thins the data near the decision boundary) and ``x_perp ~ N(0, I)``.
Student ``f(w, x) = w . x / sqrt(d)`` from ``w_0 = 0``, hinge loss ``l(z) = max(0, 1 - z)`` on the margins
``z_mu = y_mu f(w, x_mu)``, the empirical loss ``L = (1/P) sum_mu l(z_mu)``, and SGD

    w <- w - eta grad L_B(w),   L_B = (1/B) sum_{mu in batch} l(z_mu),   batch drawn with replacement,

at temperature ``T = eta / B``, run until every margin is at least 1 (zero hinge loss, checked every step);
``t* = eta x steps``. (Model as in Sclocchi, Geiger & Wyart, arXiv 2301.13703; the abstract, not the body, was
available to us, so the normalisation ``1/sqrt(d)`` and ``w_0 = 0`` are our reading.)

Exact quantities at any ``w`` (active set ``A = {mu : z_mu < 1}``):

* the signal, the informative weight ``w_1``, and the noise, ``||w_perp||``; the test error of ``w`` is
  ``E_{x_1}[Phibar(|x_1| w_1 / ||w_perp||)]``, a 1-D integral (``arctan(||w_perp|| / w_1) / pi`` for ``chi = 0``);
* the mean SGD step ``-eta grad L = (eta / (P sqrt(d))) sum_{mu in A} y_mu x_mu``;
* its covariance ``(eta^2 / B) Cov_mu(g_mu)``, with ``g_mu = -y_mu x_mu 1[mu in A] / sqrt(d)`` the per-example
  gradients and ``Cov_mu`` the population covariance over the ``P`` examples (sampling with replacement).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import scipy.integrate
import scipy.special


def sample_data(key: jax.Array, num: int, d: int, chi: float = 0.0) -> tuple[jax.Array, jax.Array]:
  """``(x, y)``: ``num`` points of the model, ``|x_1| = sqrt(2 G)`` with ``G ~ Gamma((chi + 1) / 2)``."""
  if chi <= -1:
    raise ValueError(f'theory.sgd_noise.sample_data: chi must be > -1, got {chi}')
  k_g, k_sign, k_perp = jax.random.split(key, 3)
  dtype = jnp.zeros(()).dtype
  if chi == 0:  # the half-normal, without the (slow to compile) gamma sampler
    x1 = jnp.abs(jax.random.normal(k_g, (num,), dtype))
  else:
    x1 = jnp.sqrt(2 * jax.random.gamma(k_g, (chi + 1) / 2, (num,), dtype))
  y = jnp.where(jax.random.bernoulli(k_sign, 0.5, (num,)), 1.0, -1.0).astype(dtype)
  x = jnp.concatenate([(y * x1)[:, None], jax.random.normal(k_perp, (num, d - 1), dtype)], axis=1)
  return x, y


def abs_x1_cdf(t: np.ndarray, chi: float) -> np.ndarray:
  """CDF of ``|x_1|``: the regularised lower gamma function ``P((chi + 1) / 2, t^2 / 2)``."""
  return scipy.special.gammainc((chi + 1) / 2, np.asarray(t, np.float64) ** 2 / 2)


def margins(w: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
  """``z_mu = y_mu w . x_mu / sqrt(d)``."""
  return y * (x @ w) / jnp.sqrt(x.shape[1])


def per_example_gradients(w: jax.Array, x: jax.Array, y: jax.Array) -> jax.Array:
  """``g_mu = -y_mu x_mu 1[z_mu < 1] / sqrt(d)`` (``P x d``; the hinge's subgradient 0 at ``z = 1``)."""
  active = margins(w, x, y) < 1
  return -(active * y)[:, None] * x / jnp.sqrt(x.shape[1])


def step_moments(w: jax.Array, x: jax.Array, y: jax.Array, eta: float, batch: int) -> tuple[jax.Array, jax.Array]:
  """Exact mean and covariance of one SGD step ``Delta w`` at ``w`` (batch of ``batch`` with replacement)."""
  g = per_example_gradients(w, x, y)
  mean = g.mean(0)
  centred = g - mean
  return -eta * mean, eta ** 2 / batch * centred.T @ centred / g.shape[0]


def test_error(w1: float, w_perp_norm: float, chi: float) -> float:
  """``P(sign(w . x) != sign(x_1)) = E[Phibar(|x_1| w_1 / ||w_perp||)]`` over the ``|x_1|`` law (quadrature)."""
  if w_perp_norm == 0:
    return 0.0 if w1 > 0 else 1.0
  r = w1 / w_perp_norm
  log_norm = math.log(2 ** ((chi - 1) / 2) * math.gamma((chi + 1) / 2))
  density = lambda t: math.exp(chi * math.log(t) - t * t / 2 - log_norm) if t > 0 else 0.0
  return float(scipy.integrate.quad(lambda t: density(t) * scipy.special.ndtr(-r * t), 0, np.inf,
                                    epsabs=1e-13)[0])


def run_sgd(x: jax.Array, y: jax.Array, *, temperature: float, batch: int, key: jax.Array,
            max_steps: int = 200_000) -> dict[str, jax.Array]:
  """SGD from ``w = 0`` until every margin is ``>= 1`` (or ``max_steps``); jit- and vmap-able over ``key`` and
  ``temperature``.

  Returns:
    ``w``, ``steps``, ``t_star = eta steps``, ``w1`` (signal), ``w_perp`` (``||w_perp||``, noise),
    ``converged``.
  """
  p, d = x.shape
  eta = temperature * batch
  grad_batch = lambda w, idx: per_example_gradients(w, x[idx], y[idx]).mean(0)

  def cond(state):
    w, step = state
    return (jnp.min(margins(w, x, y)) < 1) & (step < max_steps)

  def body(state):
    w, step = state
    idx = jax.random.randint(jax.random.fold_in(key, step), (batch,), 0, p)
    return w - eta * grad_batch(w, idx), step + 1

  w, steps = jax.lax.while_loop(cond, body, (jnp.zeros(d, x.dtype), jnp.asarray(0)))
  return {'w': w, 'steps': steps, 't_star': eta * steps, 'w1': w[0], 'w_perp': jnp.linalg.norm(w[1:]),
          'converged': jnp.min(margins(w, x, y)) >= 1}
