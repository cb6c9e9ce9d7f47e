"""Convergence on a real problem: each element-wise optimizer, at its registered defaults, learns digits.

An MLP (64 hidden units) on scikit-learn's 8x8 digits, 150 steps of batch 128 (about 13 epochs): every
optimizer must exceed 90% test accuracy (Adam reaches about 96% here; chance is 10%). The same problem and
defaults as the main job (python -m experiments.compare).
"""

import pytest

import digits
from optim import registry

NAMES = ['diffgrad', 'adabelief', 'adamp', 'sgdp', 'sgd_sai', 'coordinate_clip_sgd']


@pytest.mark.parametrize('name', NAMES)
def test_learns_digits(name):
  entry = registry.get(name)
  fit = digits.fit(entry.build(), oracles=entry.oracles, batch_size=128, hidden=(64,))
  assert fit.test_accuracy > 0.9, f'{name}: test accuracy {fit.test_accuracy:.3f} after 150 steps'
