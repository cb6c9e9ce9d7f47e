"""Shared fixtures. The 8 virtual CPU devices are set in the repository's root ``conftest.py``."""

import os

import jax
import pytest

# The real data sets live beside the repository (../shared/data), not in it; POLYAK_SHARED_DATA overrides.
_CANDIDATES = (os.environ.get('POLYAK_SHARED_DATA', ''),
               os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data'))


@pytest.fixture
def x64():
  """Runs a test in float64 (oracle comparisons), restoring the previous setting afterwards."""
  previous = jax.config.jax_enable_x64
  jax.config.update('jax_enable_x64', True)
  yield
  jax.config.update('jax_enable_x64', previous)


@pytest.fixture
def shared_data():
  for path in _CANDIDATES:
    if path and os.path.isdir(path):
      return os.path.abspath(path)
  pytest.fail(f'shared data not found in {[p for p in _CANDIDATES if p]}; set POLYAK_SHARED_DATA')
