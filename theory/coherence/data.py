"""Data of the coherence experiments: digits as flat float64 features, and labels corrupted at random."""

from __future__ import annotations

import numpy as np


def digits(test_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """scikit-learn's bundled 8x8 digits (no download): ``(x_train, y_train, x_test, y_test)``, pixels in [0, 1].

  Example:
    >>> x, y, xt, yt = digits()
    >>> x.shape, xt.shape
    ((1438, 64), (359, 64))
  """
  from sklearn.datasets import load_digits
  d = load_digits()
  x, y = d.data / 16.0, d.target.astype(np.int32)
  perm = np.random.RandomState(seed).permutation(len(x))
  n_test = int(test_fraction * len(x))
  return x[perm[n_test:]], y[perm[n_test:]], x[perm[:n_test]], y[perm[:n_test]]


def corrupt_labels(y: np.ndarray, fraction: float, num_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Draws the labels of a random ``fraction`` of the examples uniformly from the ``k`` classes (Zhang et al.'s
  random labels; ``fraction = 1`` is a fully random-label data set).

  A redrawn label equals the true one with probability ``1/k``; the returned mask marks the examples whose label
  is now wrong, the ones that can only be fitted by memorisation.

  Args:
    y: integer labels.
    fraction: in [0, 1].
    num_classes: number of classes ``k >= 2``.
    seed: integer seed.

  Returns:
    ``(labels, wrong)``: the new labels and the boolean mask of the examples whose label changed.

  Example:
    >>> labels, wrong = corrupt_labels(np.zeros(1000, np.int32), 0.5, 10)
    >>> 400 < int(wrong.sum()) < 500, bool(np.all(labels[~wrong] == 0))
    (True, True)
  """
  if not 0 <= fraction <= 1:
    raise ValueError(f'corrupt_labels: fraction must be in [0, 1], got {fraction}')
  rng = np.random.RandomState(seed)
  chosen = np.zeros(len(y), bool)
  chosen[rng.permutation(len(y))[:int(round(fraction * len(y)))]] = True
  labels = np.where(chosen, rng.randint(0, num_classes, size=len(y)), y).astype(np.int32)
  return labels, labels != y
