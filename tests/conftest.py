"""Shared fixtures. The 8 virtual CPU devices are set in the repository's root ``conftest.py``."""

import os

import jax
import pytest

# Scripts that pytest must not import for doctests: fixture generators (they need reference packages in a scratch
# environment, and may switch jax to float64 at import) and the multi-process worker (it joins a runtime).
collect_ignore_glob = ['*/fixtures/*.py', 'decentral/multiprocess_worker.py']

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
