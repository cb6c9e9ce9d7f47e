"""The order statistics' two paths (comparator network on CPU, ``jnp.sort`` elsewhere) against two oracles: the
previous implementation (rank counting, copied here as the reference) and NumPy, on inputs with ties, +-inf and
NaN, with the network's column tiling forced on small inputs."""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decentral.robust import order_statistics


def _rank_counting_sum(r, lo, hi):
  """The previous implementation's kernel: rank_i = #{j: x_j < x_i} + #{j < i: x_j = x_i} (a permutation even
  with ties), the sum of the values whose rank lies in [lo, hi), added in worker order."""
  r = np.where(np.isnan(r), np.inf, r)
  n = r.shape[0]
  total = np.zeros(r.shape[1], r.dtype)
  for i in range(n):
    rank = np.sum((r < r[i]) | ((r == r[i]) & (np.arange(n)[:, None] < i)), axis=0)
    total = total + np.where((rank >= lo) & (rank < hi), r[i], 0)
  return total


def _oracle(x, rule, f):
  """The previous implementation's median ((a + b) / 2 of the two middle values) and trimmed mean."""
  n = x.shape[0]
  r = x.reshape(n, -1)
  if rule == 'median':
    lo, hi = (n - 1) // 2, n // 2
    with np.errstate(invalid='ignore', over='ignore'):
      out = (_rank_counting_sum(r, lo, lo + 1) + _rank_counting_sum(r, hi, hi + 1)) / 2
  else:
    with np.errstate(invalid='ignore'):
      out = _rank_counting_sum(r, f, n - f) / (n - 2 * f)
  return out.reshape(x.shape[1:])


def _nasty(rng, n, d, dtype=np.float32):
  """Small integers (many ties) with +inf, -inf and NaN sprinkled in."""
  x = rng.randint(-3, 4, size=(n, d)).astype(dtype)
  x[rng.rand(n, d) < 0.05] = np.inf
  x[rng.rand(n, d) < 0.05] = -np.inf
  x[rng.rand(n, d) < 0.05] = np.nan
  return x


@functools.cache
def _jitted(name, f, method):
  rule = getattr(order_statistics, name)
  return jax.jit(functools.partial(rule, f=f, method=method))


@pytest.mark.parametrize('n', [1, 2, 3, 5, 8, 13, 32])
def test_both_paths_equal_the_previous_implementation(n, monkeypatch):
  """Median exactly, trimmed mean to float rounding (the middle is added in sorted, not worker, order); the tile
  width forced down to 128 columns so that d = 300 runs three tiles, the last one overlapping."""
  monkeypatch.setattr(order_statistics, 'TILE_BYTES', 128 * n * 4)
  rng = np.random.RandomState(n)
  x = _nasty(rng, n, 300)
  for method in order_statistics.METHODS:
    np.testing.assert_array_equal(_jitted('median', 0, method)(jnp.asarray(x)), _oracle(x, 'median', 0))
  for method, f in itertools.product(order_statistics.METHODS, sorted({0, (n - 1) // 2, (n - 1) // 4})):
    np.testing.assert_allclose(_jitted('trimmed_mean', f, method)(jnp.asarray(x)), _oracle(x, 'trimmed_mean', f),
                               rtol=1e-6)


def test_numpy_semantics_on_finite_inputs(x64):
  """np.median, and scipy.stats.trim_mean's definition (drop f values at each end, mean of the rest), in float64
  on a pytree with leaves of two dtypes."""
  rng = np.random.RandomState(0)
  x = {'a': rng.randn(9, 4, 70), 'b': rng.randn(9, 30).astype(np.float32)}
  for method in order_statistics.METHODS:
    got = jax.jit(functools.partial(order_statistics.median, method=method))(x)
    for k in x:
      np.testing.assert_array_equal(got[k], np.median(x[k], axis=0))
      assert got[k].dtype == x[k].dtype
    got = jax.jit(functools.partial(order_statistics.trimmed_mean, f=3, method=method))(x)
    for k in x:
      want = np.sort(x[k], axis=0)[3:6].mean(axis=0)
      np.testing.assert_allclose(got[k], want, rtol=1e-12 if x[k].dtype == np.float64 else 1e-6)


@pytest.mark.parametrize('n', [2, 3, 7, 8, 16, 31, 64])
def test_pruned_networks_select_the_right_values(n):
  """Every network the rules run (pruned Batcher sort, pruned f-selection) leaves the right multiset in the
  summed range, checked in pure Python on random integer columns with ties, for every f and the median."""
  rng = np.random.RandomState(n)
  cases = [(f, n - f) for f in range((n + 1) // 2)] + [((n - 1) // 2, n // 2 + 1)]
  for lo, hi in cases:
    network = order_statistics.network_for(n, lo, hi)
    for _ in range(30):
      x = rng.randint(0, 5, n).tolist()
      y = list(x)
      for a, b in network:
        y[a], y[b] = min(y[a], y[b]), max(y[a], y[b])
      assert sorted(y[lo:hi]) == sorted(x)[lo:hi], (n, lo, hi)


def test_network_sizes():
  """Batcher's comparator counts (Knuth, TAOCP 5.3.4) and the selection passes winning for small f."""
  assert [len(order_statistics.batcher_network(n)) for n in (2, 4, 8, 16, 32, 128)] == [1, 5, 19, 63, 191, 1471]
  assert len(order_statistics.network_for(128, 1, 127)) < 2 * 128
  with pytest.raises(ValueError, match='method'):
    order_statistics.median(jnp.ones((3, 2)), method='quick')


def test_default_method_by_backend():
  cpu = jax.default_backend() == 'cpu'
  assert order_statistics.default_method(8) == ('network' if cpu else 'sort')
  assert order_statistics.default_method(order_statistics.NETWORK_MAX + 1) == 'sort'
