"""Data of the Hessian-spectrum experiments: Gaussian k-cluster classification and PCA features of real inputs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from theory.numerics import float64


@float64
def gaussian_clusters(seed: int, num_points: int, dim: int, num_classes: int, separation: float = 1.5,
                      noise: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
  """k Gaussian clusters, one per class: ``x = mu_y + noise * N(0, I)`` with ``||mu_y|| = separation``.

  Args:
    seed: integer seed.
    num_points: number of points ``N`` (classes balanced: ``y_i = i mod k``).
    dim: input dimension.
    num_classes: number of clusters and classes ``k``.
    separation: norm of each (random-direction) cluster mean; with ``noise = 1``, 1.5 gives overlapping
      clusters (a network reaches 80-98% training accuracy), 3 nearly separable ones.
    noise: within-cluster standard deviation.

  Returns:
    ``(x, y)``: float64 inputs ``(N, dim)`` and int32 labels ``(N,)``.

  Example:
    >>> x, y = gaussian_clusters(0, num_points=6, dim=4, num_classes=3)
    >>> x.shape, y.tolist()
    ((6, 4), [0, 1, 2, 0, 1, 2])
  """
  for name, value in (('num_points', num_points), ('dim', dim), ('num_classes', num_classes)):
    if value < 1:
      raise ValueError(f'{name} must be >= 1, got {value}')
  if separation < 0 or noise < 0:
    raise ValueError(f'separation and noise must be >= 0, got {separation}, {noise}')
  k_mean, k_noise = jax.random.split(jax.random.key(seed))
  means = jax.random.normal(k_mean, (num_classes, dim))
  means = separation * means / jnp.linalg.norm(means, axis=1, keepdims=True)
  y = jnp.arange(num_points) % num_classes
  x = means[y] + noise * jax.random.normal(k_noise, (num_points, dim))
  return np.asarray(x, np.float64), np.asarray(y, np.int32)


def pca_features(x: np.ndarray, dim: int) -> np.ndarray:
  """Projects flattened inputs on their top ``dim`` principal components, scaled to unit mean variance.

  Args:
    x: inputs ``(N, ...)`` (images are flattened).
    dim: number of components kept.

  Returns:
    float64 features ``(N, dim)``, centred, with ``mean_j Var(x_j) = 1``.

  Example:
    >>> import numpy as np
    >>> z = pca_features(np.random.default_rng(0).normal(size=(50, 3, 3)), 4)
    >>> z.shape, round(float(z.var(0).mean()), 6)
    ((50, 4), 1.0)
  """
  x = np.asarray(x, np.float64).reshape(len(x), -1)
  if not 1 <= dim <= min(x.shape):
    raise ValueError(f'dim must be in [1, {min(x.shape)}], got {dim}')
  x = x - x.mean(0)
  _, _, vt = np.linalg.svd(x, full_matrices=False)
  z = x @ vt[:dim].T
  return z / np.sqrt(z.var(0).mean())
