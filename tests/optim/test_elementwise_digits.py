"""Convergence on a real problem: each element-wise optimizer, at its registered defaults, learns digits.

An MLP (64 hidden units) on scikit-learn's 8x8 digits, 150 steps of batch 128 (about 13 epochs): every
optimizer must exceed 90% test accuracy (Adam reaches about 96% here; chance is 10%). The same problem and
defaults as the main job (python -m experiments.compare).
"""

import jax
import jax.numpy as jnp
import pytest

from experiments.lib import training
from optim import registry

NAMES = ['diffgrad', 'adabelief', 'adamp', 'sgdp', 'sgd_sai', 'coordinate_clip_sgd']


@pytest.fixture(scope='module')
def problem():
  return training.make_problem()


@pytest.mark.parametrize('name', NAMES)
def test_learns_digits(problem, name):
  entry = registry.get(name)
  tx = entry.build()
  params = jax.tree.map(jnp.copy, problem.params)
  state = tx.init(params)
  step = training.make_step(problem.model, entry, tx)
  for t in range(150):
    x, y = training.batch(problem.dataset, 128, t, seed=0)
    params, state, loss = step(params, state, x, y, training.oracle_key(0, t))
  accuracy = training.accuracy(problem.model, params, problem.dataset.x_test, problem.dataset.y_test)
  assert accuracy > 0.9, f'{name}: test accuracy {accuracy:.3f} after 150 steps (loss {float(loss):.3f})'
