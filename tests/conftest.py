"""Shared fixtures. The 8 virtual CPU devices are set in the repository's root ``conftest.py``."""

import os

import jax
import pytest

SHARED_DATA = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data')


@pytest.fixture
def x64():
  """Runs a test in float64 (oracle comparisons), restoring the previous setting afterwards."""
  previous = jax.config.jax_enable_x64
  jax.config.update('jax_enable_x64', True)
  yield
  jax.config.update('jax_enable_x64', previous)


@pytest.fixture
def shared_data():
  path = os.path.abspath(os.environ.get('POLYAK_SHARED_DATA', SHARED_DATA))
  if not os.path.isdir(path):
    pytest.fail(f'shared data not found at {path}; set POLYAK_SHARED_DATA')
  return path
