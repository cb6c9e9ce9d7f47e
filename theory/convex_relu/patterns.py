"""Activation patterns ``D = diag(1[X h >= 0])`` of a two-layer ReLU network on fixed data (Pilanci & Ergen,
arXiv 2002.10553; sampled as in Bai, Gautam & Sojoudi, arXiv 2201.01965).

``X`` carries a column of ones when the network has biases (:func:`add_bias`); a pattern is stored as a 0/1 column,
so ``patterns`` is ``(n, P)``. :func:`sample_patterns` draws gates ``h ~ N(0, I)`` and keeps the distinct nonzero
patterns with the gate that made each (the gated-ReLU classifier needs it). :func:`enumerate_patterns_2d` lists
*every* pattern of points in the plane with a bias column (all dichotomies by a line), so that a dual certificate
over it is a certificate of global optimality.
"""

from __future__ import annotations

import itertools

import numpy as np


def add_bias(x: np.ndarray) -> np.ndarray:
  """``[x, 1]``: inputs with a column of ones (the hidden biases become the last weight)."""
  return np.hstack([x, np.ones((x.shape[0], 1))])


def _unique_columns(patterns: np.ndarray, gates: np.ndarray):
  keep = patterns.any(0)
  patterns, gates = patterns[:, keep], gates[:, keep]
  _, idx = np.unique(patterns, axis=1, return_index=True)
  idx = np.sort(idx)
  return patterns[:, idx], gates[:, idx]


def sample_patterns(x: np.ndarray, num_samples: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Distinct nonzero patterns ``1[x h >= 0]`` for ``num_samples`` gates ``h ~ N(0, I)``.

  Returns:
    ``(patterns (n, P) float 0/1, gates (d, P))``, ``P <= num_samples``, in order of first appearance.

  Example:
    >>> p, g = sample_patterns(add_bias(np.array([[0.0], [1.0]])), 200)
    >>> sorted(map(tuple, p.T.astype(int).tolist()))
    [(0, 1), (1, 0), (1, 1)]
  """
  gates = np.random.default_rng(seed).normal(size=(x.shape[1], num_samples))
  return _unique_columns((x @ gates >= 0).astype(np.float64), gates)


def enumerate_patterns_2d(x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Every nonzero pattern ``1[h_1 x_1 + h_2 x_2 + h_0 >= 0]`` of points ``x2 (n, 2)`` in general position.

  Each dichotomy by a line can be moved until the line passes through two points; so for every pair ``(i, j)``
  the line through them, shifted a little (both points on one side) or turned a little about their midpoint (one
  on each side), in both directions, and its reverse, gives all patterns (plus the all-ones pattern).

  Returns:
    ``(patterns (n, P), gates (3, P))`` for the inputs ``add_bias(x2)``.
  """
  xb = add_bias(x2)
  n = len(x2)
  scale = np.ptp(x2, 0).max() + 1.0
  delta = 1e-7 * scale
  gates = [np.array([0.0, 0.0, 1.0])]
  for i, j in itertools.combinations(range(n), 2):
    d = x2[j] - x2[i]
    normal = np.array([-d[1], d[0]]) / np.linalg.norm(d)
    mid = 0.5 * (x2[i] + x2[j])
    for angle, shift in ((0.0, delta), (0.0, -delta), (1e-7, 0.0), (-1e-7, 0.0)):
      c, s = np.cos(angle), np.sin(angle)
      nr = np.array([c * normal[0] - s * normal[1], s * normal[0] + c * normal[1]])
      h = np.array([nr[0], nr[1], -nr @ mid + shift])
      gates += [h, -h]
  gates = np.stack(gates, 1)
  return _unique_columns((xb @ gates >= 0).astype(np.float64), gates)
