"""The binary task of the network experiments: even against odd digits, images pooled and normalised."""

from __future__ import annotations

import numpy as np


def parity_task(images: np.ndarray, labels: np.ndarray, pool: int = 2) -> tuple[np.ndarray, np.ndarray]:
  """``(x, y)``: images (``N x H x W [x 1]``) mean-pooled by ``pool`` (when it divides the side), centred and
  scaled per image to norm ``sqrt(dim)``; ``y = +1`` for even digits, ``-1`` for odd (the paper's MNIST task).

  Example:
    >>> x, y = parity_task(np.ones((2, 4, 4)) * np.arange(4), np.array([3, 8]))
    >>> x.shape, y.tolist()
    ((2, 4), [-1.0, 1.0])
  """
  images = np.asarray(images, np.float64)
  if images.ndim == 4:
    images = images[..., 0]
  n, h, w = images.shape
  if pool > 1 and h % pool == 0 and w % pool == 0:
    images = images.reshape(n, h // pool, pool, w // pool, pool).mean(axis=(2, 4))
  x = images.reshape(n, -1)
  x = x - x.mean(axis=1, keepdims=True)
  x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12) * np.sqrt(x.shape[1])
  return x, np.where(np.asarray(labels) % 2 == 0, 1.0, -1.0)
