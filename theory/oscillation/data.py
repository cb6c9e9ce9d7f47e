"""The feature-noise data model of benign oscillation (Lu, Wu, Yang & Zou, arXiv 2310.17074).

Every example has three patches in ``R^d`` and a label ``y`` uniform on ``{-1, +1}``:

    x = [ y v ,  (y u  with probability rho, else xi') ,  xi ],     xi, xi' ~ N(0, sigma_p^2 (I - P_uv))

* a **weak feature** ``y v`` (small ``||v||``) in every example;
* a **strong feature** ``y u`` (large ``||u||``, ``u`` orthogonal to ``v``) in a fraction ``rho`` of them;
* Gaussian **noise** patches, orthogonal to ``u`` and ``v`` (``P_uv`` projects on their span).

The weak-only test set drops the strong feature: ``x = [y v, xi', xi]``. The qualitative model (weak in every
point, strong in a fraction, noise) is the paper's abstract; the three-patch layout, the orthogonal projection
and the constants are this module's choices (the paper's Definition was not available to check them).
Here ``v = ||v|| e_1`` and ``u = ||u|| e_2``, so the noise lives on coordinates ``3..d``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from theory.numerics import float64


@float64
def feature_noise_data(seed: int, num_points: int, dim: int = 200, strong_fraction: float = 0.8,
                       weak_norm: float = 1.0, strong_norm: float = 5.0, noise_std: float = 1.0,
                       strong: bool = True) -> dict[str, np.ndarray]:
  """Samples the feature-noise data model.

  Args:
    seed: integer seed.
    num_points: ``n``.
    dim: patch dimension ``d >= 3``.
    strong_fraction: ``rho``, the probability that an example carries the strong feature.
    weak_norm: ``||v||``.
    strong_norm: ``||u||``.
    noise_std: ``sigma_p``.
    strong: False gives the weak-only test distribution (``rho = 0``).

  Returns:
    ``{'x': (n, 3, d), 'y': (n,) in {-1, +1}, 'strong': (n,) bool, 'v': (d,), 'u': (d,)}`` as float64 NumPy.

  Example:
    >>> data = feature_noise_data(0, 4, dim=5)
    >>> data['x'].shape, bool((data['x'][:, 0] == data['y'][:, None] * data['v']).all())
    ((4, 3, 5), True)
  """
  if dim < 3:
    raise ValueError(f'feature_noise_data: dim must be >= 3, got {dim}')
  if not 0 <= strong_fraction <= 1:
    raise ValueError(f'feature_noise_data: strong_fraction must be in [0, 1], got {strong_fraction}')
  k_label, k_noise1, k_noise2, k_strong = jax.random.split(jax.random.key(seed), 4)
  y = jnp.where(jax.random.bernoulli(k_label, 0.5, (num_points,)), 1.0, -1.0)
  v = jnp.zeros(dim).at[0].set(weak_norm)
  u = jnp.zeros(dim).at[1].set(strong_norm)
  off_features = jnp.ones(dim).at[:2].set(0.0)  # the projection I - P_uv, diagonal in this basis
  xi1 = noise_std * jax.random.normal(k_noise1, (num_points, dim)) * off_features
  xi2 = noise_std * jax.random.normal(k_noise2, (num_points, dim)) * off_features
  has_strong = jax.random.bernoulli(k_strong, strong_fraction if strong else 0.0, (num_points,))
  middle = jnp.where(has_strong[:, None], y[:, None] * u, xi1)
  x = jnp.stack([y[:, None] * v, middle, xi2], axis=1)
  return {'x': np.asarray(x), 'y': np.asarray(y), 'strong': np.asarray(has_strong), 'v': np.asarray(v),
          'u': np.asarray(u)}
