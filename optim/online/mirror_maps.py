"""Mirror maps for online mirror descent: the Euclidean ball (or all of R^d) and the probability simplex (entropy).

A mirror map ``psi`` on a domain X gives the proximal step of OMD,

    step(y, g, eta) = argmin_{x in X} <g, x> + B_psi(x, y) / eta,

and the constants an adaptive step size needs: the dual norm of a gradient and the domain's "diameter" D, taken
here so that ``D^2 / 2`` bounds the Bregman divergence from the starting point (the centre of the ball, the
uniform distribution):

- :func:`euclidean`: ``psi = ||x||^2 / 2``; ``step = Proj_ball(y - eta g)`` (no projection without a radius);
  dual norm ``||.||_2``; ``D = 2 r``.
- :func:`entropy`: ``psi = sum x log x`` on the simplex of each leaf's last axis (a leaf of shape (k, n) holds k
  distributions over n outcomes); ``step = y * exp(-eta g) / normaliser`` (multiplicative weights, computed as a
  softmax of ``log y - eta g``); dual norm ``||.||_inf`` per distribution (squares summed over the
  distributions); ``D = sqrt(2 log n)`` (``KL(x, uniform) <= log n``).

>>> import jax.numpy as jnp
>>> m = entropy()
>>> [round(float(v), 4) for v in m.step(jnp.array([0.5, 0.5]), jnp.array([1.0, 0.0]), jnp.log(3.0))]
[0.25, 0.75]
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

PyTree = Any


class MirrorMap(NamedTuple):
  """A mirror map's OMD ingredients (all act on a whole parameter tree).

  Attributes:
    name: ``'euclidean'`` or ``'entropy'``.
    step: ``(y, g, eta) -> argmin_x <g, x> + B(x, y) / eta`` over the domain.
    project: the Bregman projection of a starting point onto the domain.
    dual_sq_norm: ``g -> ||g||_*^2``.
    diameter: ``params -> D`` with ``D^2 / 2`` bounding the Bregman divergence from the start (None: unbounded).
  """

  name: str
  step: Callable[[PyTree, PyTree, jax.Array], PyTree]
  project: Callable[[PyTree], PyTree]
  dual_sq_norm: Callable[[PyTree], jax.Array]
  diameter: Callable[[PyTree], float | None]


def _sq_norm(tree: PyTree) -> jax.Array:
  return sum(jnp.sum(jnp.square(leaf)) for leaf in jax.tree.leaves(tree))


def euclidean(radius: float | None = None) -> MirrorMap:
  """``psi = ||x||^2 / 2`` on the ball ``||x||_2 <= radius`` (the global norm of the tree), or R^d for None."""
  if radius is not None and not (math.isfinite(radius) and radius > 0):
    raise ValueError(f'euclidean: radius must be positive and finite (or None), got {radius!r}')

  def project(x):
    if radius is None:
      return x
    scale = jnp.minimum(1.0, radius / jnp.maximum(jnp.sqrt(_sq_norm(x)), jnp.finfo(jnp.float32).tiny))
    return jax.tree.map(lambda leaf: leaf * scale.astype(leaf.dtype), x)

  def step(y, g, eta):
    return project(jax.tree.map(lambda a, b: a - eta * b, y, g))

  return MirrorMap('euclidean', step, project, _sq_norm, lambda params: None if radius is None else 2.0 * radius)


def entropy() -> MirrorMap:
  """Negative entropy on the probability simplex of each leaf's last axis (multiplicative weights)."""

  def project(x):
    return jax.tree.map(lambda leaf: leaf / jnp.sum(leaf, axis=-1, keepdims=True), x)

  def step(y, g, eta):
    return jax.tree.map(lambda a, b: jax.nn.softmax(jnp.log(a) - eta * b, axis=-1), y, g)

  def dual_sq_norm(g):
    return sum(jnp.sum(jnp.max(jnp.abs(leaf), axis=-1) ** 2) for leaf in jax.tree.leaves(g))

  def diameter(params):
    n = max(jnp.shape(leaf)[-1] for leaf in jax.tree.leaves(params))
    return math.sqrt(2.0 * math.log(n)) if n > 1 else 1.0

  return MirrorMap('entropy', step, project, dual_sq_norm, diameter)


def get(name: str, radius: float | None = None) -> MirrorMap:
  """The mirror map called ``name`` (``'euclidean'`` with an optional ``radius``, or ``'entropy'``)."""
  if name == 'euclidean':
    return euclidean(radius)
  if name == 'entropy':
    if radius is not None:
      raise ValueError('entropy: the simplex takes no radius')
    return entropy()
  raise ValueError(f"mirror_map must be 'euclidean' or 'entropy', got {name!r}")
