"""Closed-form Gaussian expectations of the activations: the arc-cosine (ReLU) and arcsine (erf) duals.

For ``(a, b) ~ N(0, [[q1, c], [c, q2]])`` these give ``V(q1, q2, c) = E[phi(a) phi(b)]`` and
``Vdot(q1, q2, c) = E[phi'(a) phi'(b)]``, the two maps every kernel recursion of :mod:`theory.kernels` applies
entrywise to a covariance matrix:

* ReLU (Cho & Saul 2009, arc-cosine kernels of degree 1 and 0), ``cos t = c / sqrt(q1 q2)``:
  ``V = sqrt(q1 q2) (sin t + (pi - t) cos t) / (2 pi)``, ``Vdot = (pi - t) / (2 pi)``;
* erf (Williams 1997): ``V = (2 / pi) arcsin(2 c / sqrt((1 + 2 q1)(1 + 2 q2)))``,
  ``Vdot = (4 / pi) / sqrt((1 + 2 q1)(1 + 2 q2) - 4 c^2)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.special

ACTIVATIONS = ('relu', 'erf')


def check_activation(activation: str, where: str = 'theory.kernels') -> None:
  """ValueError naming ``where`` unless ``activation`` is one of :data:`ACTIVATIONS`."""
  if activation not in ACTIVATIONS:
    raise ValueError(f'{where}: activation must be one of {ACTIVATIONS}, got {activation!r}')


def phi(activation: str):
  """The activation as a function: ``relu`` or ``erf``."""
  check_activation(activation)
  return jax.nn.relu if activation == 'relu' else jax.scipy.special.erf


def duals(activation: str, q1: jax.Array, q2: jax.Array, c: jax.Array) -> tuple[jax.Array, jax.Array]:
  """``(E[phi(a) phi(b)], E[phi'(a) phi'(b)])`` for ``(a, b)`` centred Gaussian with variances ``q1, q2`` and
  covariance ``c`` (broadcast together; the formulas of the module docstring).

  Example:
    >>> import jax.numpy as jnp
    >>> v, vdot = duals('relu', jnp.array(1.0), jnp.array(1.0), jnp.array(1.0))
    >>> round(float(v), 6), round(float(vdot), 6)   # E[relu(a)^2] = q / 2, P(a > 0) = 1 / 2
    (0.5, 0.5)
  """
  check_activation(activation)
  if activation == 'relu':
    norm = jnp.sqrt(q1 * q2)
    cos = jnp.clip(c / norm, -1.0, 1.0)
    t = jnp.arccos(cos)
    return norm * (jnp.sqrt(1.0 - cos ** 2) + (jnp.pi - t) * cos) / (2 * jnp.pi), (jnp.pi - t) / (2 * jnp.pi)
  prod = (1 + 2 * q1) * (1 + 2 * q2)
  v = (2 / jnp.pi) * jnp.arcsin(jnp.clip(2 * c / jnp.sqrt(prod), -1.0, 1.0))
  return v, (4 / jnp.pi) / jnp.sqrt(prod - 4 * c ** 2)


def dual_matrix(activation: str, sigma: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Both duals applied entrywise to a covariance matrix ``sigma`` (its diagonal gives the variances)."""
  q = jnp.diagonal(sigma)
  return duals(activation, q[:, None], q[None, :], sigma)
