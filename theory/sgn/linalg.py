"""Matrix helpers of the SGN computations: symmetric parts and the square-root pair of a metric."""

from __future__ import annotations

import numpy as np


def sym(a: np.ndarray) -> np.ndarray:
  """The symmetric part ``(A + A^T) / 2``."""
  return 0.5 * (a + a.T)


def sqrt_pair(m: np.ndarray):
  """``(M^{1/2}, M^{-1/2})`` of a symmetric positive definite metric ``M`` (a ValueError otherwise)."""
  vals, vecs = np.linalg.eigh(sym(m))
  if vals[0] <= 0:
    raise ValueError('the metric M must be positive definite')
  return (vecs * np.sqrt(vals)) @ vecs.T, (vecs / np.sqrt(vals)) @ vecs.T
