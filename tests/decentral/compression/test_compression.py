"""Compressors: exact wire sizes against real bytes, top-k exactness, unbiasedness and variance by Monte Carlo."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decentral import axis, registry
from decentral import compression as C
from decentral.compression import fedzip_codec as fedzip
from decentral.compression import privacy

# Every registered compressor is checked; those whose factory needs arguments get them here (top-k and random-k a
# count or a ratio, count sketch a table width, RQM its clip c and range delta), the others use their defaults.
REQUIRED = {'top_k': {'ratio': 0.1}, 'random_k': {'ratio': 0.2}, 'count_sketch': {'rows': 3, 'cols': 5},
            'rqm': {'c': 1.0, 'delta': 1.25, 'm': 6, 'q': 0.6}}
# Settings that reach code the defaults do not: a count instead of a ratio, wide codes, stochastic rounding.
VARIANTS = [('top_k', {'k': 3}), ('qsgd', {'levels': 200}), ('int8', {'stochastic': True})]
CASES = [(name, REQUIRED.get(name, {})) for name in registry.compressors.names()] + VARIANTS
SHAPES = [(), (3, 4, 5)]


@pytest.mark.parametrize('name,kw', CASES, ids=[f'{n}{sorted(k.items())}' for n, k in CASES])
def test_nbytes_equals_encoded_bytes_and_decoding_round_trips(name, kw):
  """``nbytes`` is the encoded size (an upper bound for the compressors tagged 'measured', whose size depends on
  the data), and decoding the encoded bytes gives back the payload's decompression exactly."""
  c = registry.compressors.build(name, **kw)
  measured = 'measured' in registry.compressors.get(name).tags
  compress, decompress = jax.jit(c.compress), jax.jit(c.decompress, static_argnums=(1, 2))
  for shape, dtype in [(s, jnp.float32) for s in SHAPES] + [((20, 15), jnp.bfloat16)]:
    x = jax.random.normal(jax.random.key(len(shape)), shape, dtype)
    payload = jax.device_get(compress(x, jax.random.key(1)))
    data = c.encode(payload, shape, dtype)
    assert isinstance(data, bytes), (shape, dtype)
    if measured:
      assert len(data) <= c.nbytes(shape, dtype), (shape, dtype)
    else:
      assert len(data) == c.nbytes(shape, dtype), (shape, dtype)
    again = decompress(jax.tree.map(jnp.asarray, c.decode(data, shape, dtype)), shape, dtype)
    want = decompress(payload, shape, dtype)
    assert want.shape == shape and want.dtype == dtype
    np.testing.assert_array_equal(np.asarray(again, np.float32), np.asarray(want, np.float32))


def test_wire_sizes_by_hand():
  f32 = jnp.float32
  assert C.top_k(5).nbytes((300,), f32) == 5 * (4 + 2)  # uint16 indices for d = 300
  assert C.top_k(5).nbytes((256,), jnp.bfloat16) == 5 * (2 + 1)  # d = 256 fits uint8
  assert C.top_k(ratio=0.001).nbytes((784, 256), f32) == 201 * (4 + 4)  # ceil(200.704); uint32 for d > 65536
  assert C.random_k(4).nbytes((100,), f32) == 4 * 4 + 8
  assert C.sign().nbytes((17,), f32) == 3 + 4
  assert C.qsgd(1).nbytes((10,), f32) == 4 + math.ceil(10 * 2 / 8)  # 3 symbols {-1, 0, 1}: 2 bits
  assert C.qsgd(4).nbytes((10,), f32) == 4 + math.ceil(10 * 4 / 8)  # 9 symbols: 4 bits
  assert C.natural().nbytes((10,), f32) == math.ceil(90 / 8)
  assert C.int8().nbytes((10,), f32) == 14
  assert C.fp4_e3m0().nbytes((11,), f32) == 6 + 4
  assert C.low_rank(2).nbytes((20, 15), f32) == (20 + 15) * 2 * 4
  assert C.low_rank(2).nbytes((15,), f32) == 60  # vectors dense
  assert C.count_sketch(3, 5).nbytes((100,), jnp.bfloat16) == 3 * 5 * 2 + 8
  assert privacy.rqm(1.0, 1.5, m=16).nbytes((10,), f32) == 5


def test_top_k_is_exact():
  x = jax.random.normal(jax.random.key(0), (50, 40))
  for k in (1, 7, 2000):
    out = np.asarray(C.top_k(k)(x)).ravel()
    want = np.zeros(x.size, np.float32)
    keep = np.argsort(-np.abs(np.asarray(x).ravel()), kind='stable')[:k]
    want[keep] = np.asarray(x).ravel()[keep]
    np.testing.assert_array_equal(out, want)
    err, norm = np.sum((out - np.asarray(x).ravel()) ** 2), np.sum(np.asarray(x) ** 2)
    assert err <= (1 - k / x.size) * norm + 1e-6  # contraction with alpha = k/d


N_MC = 6000


def _samples(c, x, n=N_MC):
  keys = jax.random.split(jax.random.key(42), n)
  return np.asarray(jax.jit(jax.vmap(lambda k: c(x, k)))(keys), np.float64)


X = jnp.array([0.9, -0.35, 0.05, 0.0, -0.6, 0.21, 0.77, -0.12])


def _omega(name, kw, d):
  """The variance bound omega, E|C(x) - x|^2 <= omega |x|^2, known for an unbiased compressor; None if not."""
  if name == 'identity':
    return 0.0
  if name == 'random_k':
    return d / (kw.get('k') or math.ceil(kw['ratio'] * d)) - 1
  if name == 'qsgd' and kw.get('norm', 'l2') == 'l2':
    s = kw.get('levels', 1)
    return min(d / s ** 2, math.sqrt(d) / s)
  if name == 'natural':
    return 1 / 8
  if name == 'count_sketch':
    return (d - 1) / (kw['rows'] * kw['cols'])
  return None


# The unbiased ones among the registered compressors, and unbiased settings of the others.
UNBIASED_VARIANTS = [('qsgd', {'levels': 4}), ('qsgd', {'levels': 2, 'norm': 'linf'}),
                     ('fp4_e3m0', {'stochastic': True}), ('count_sketch', {'rows': 4, 'cols': 3, 'decoder': 'mean'})]
UNBIASED = [(n, kw) for n, kw in CASES + UNBIASED_VARIANTS if registry.compressors.build(n, **kw).unbiased]


@pytest.mark.parametrize('name,kw', UNBIASED, ids=[f'{n}{sorted(k.items())}' for n, k in UNBIASED])
def test_unbiased_and_variance_bound_by_monte_carlo(name, kw):
  """Every compressor that declares itself unbiased: mean within 5 standard errors of x per coordinate; mean
  squared error within 5 standard errors of its omega where one is known.

  The 5-sigma tolerance makes a false failure (Gaussian tail, 8 coordinates) rarer than 1e-5.
  """
  c = registry.compressors.build(name, **kw)
  s = _samples(c, X)
  x = np.asarray(X, np.float64)
  se = s.std(0) / math.sqrt(len(s)) + 1e-12
  assert np.all(np.abs(s.mean(0) - x) <= 5 * se), (s.mean(0), x, se)
  omega = _omega(name, kw, X.size)
  if omega is not None:
    err = np.sum((s - x) ** 2, axis=1)
    bound = omega * np.sum(x ** 2)
    assert err.mean() <= bound + 5 * err.std() / math.sqrt(len(s)) + 1e-12, (err.mean(), bound)


def test_random_k_variance_is_exactly_d_over_k_minus_one():
  s = _samples(C.random_k(2), X)
  err = np.sum((s - np.asarray(X, np.float64)) ** 2, axis=1)
  want = (8 / 2 - 1) * float(np.sum(np.asarray(X, np.float64) ** 2))
  assert abs(err.mean() - want) <= 5 * err.std() / math.sqrt(len(err))


def test_sign_natural_fp4_by_hand():
  x = jnp.array([0.3, -1.7, 5.0, 0.0, 1e-3])
  want = np.array([1, -1, 1, 1, 1]) * np.mean(np.abs(x))
  np.testing.assert_allclose(jax.jit(lambda v: C.sign()(v))(x), want, rtol=1e-6)
  # E3M0 levels 0, 2^-6, ..., 1 times max|x| = 5: 0.06 -> 1/16, 0.34 -> 1/4, 2e-4 -> 0.
  np.testing.assert_allclose(jax.jit(lambda v: C.fp4_e3m0()(v))(x), [0.3125, -1.25, 5.0, 0.0, 0.0])
  nat, xn = np.asarray(jax.jit(lambda v, k: C.natural()(v, k))(x, jax.random.key(0))), np.asarray(x)
  nz = [0, 1, 2, 4]
  lo = 2.0 ** np.floor(np.log2(np.abs(xn[nz])))  # the power of two below |x|; the output is it or twice it
  assert np.all((np.abs(nat[nz]) == lo) | (np.abs(nat[nz]) == 2 * lo))
  assert nat[3] == 0 and np.all(np.sign(nat[nz]) == np.sign(xn[nz]))


def test_low_rank_is_exact_on_low_rank_matrices():
  k1, k2 = jax.random.split(jax.random.key(3))
  m = jax.random.normal(k1, (30, 3)) @ jax.random.normal(k2, (3, 20))
  r3, r2 = jax.jit(lambda m, k: (C.low_rank(3)(m, k), C.low_rank(2)(m, k)))(m, jax.random.key(0))
  np.testing.assert_allclose(r3, m, atol=1e-4)
  assert not np.allclose(r2, m, atol=1e-2)


def test_count_sketch_median_recovers_heavy_hitters():
  x = jnp.zeros(1000).at[jnp.array([3, 500, 999])].set(jnp.array([5.0, -7.0, 2.0]))
  out = jax.jit(lambda v, k: C.count_sketch(5, 50)(v, k))(x, jax.random.key(0))
  np.testing.assert_allclose(out, x, atol=1e-6)


def test_count_sketches_with_a_shared_key_add_linearly():
  c, key = C.count_sketch(3, 10), jax.random.key(5)
  a, b = jax.random.normal(jax.random.key(1), (40,)), jax.random.normal(jax.random.key(2), (40,))
  table = jax.jit(lambda v: c.compress(v, key)['table'])
  np.testing.assert_allclose(table(a) + table(b), table(a + b), rtol=1e-5, atol=1e-5)


def test_mean_over_workers_same_under_shard_map():
  tree = {'a': jax.random.normal(jax.random.key(1), (8, 6, 5)), 'b': jax.random.normal(jax.random.key(2), (8, 4))}

  def step(x):
    key = jax.random.fold_in(jax.random.key(0), axis.worker_index('w'))
    return C.mean_over_workers(C.qsgd(2), x, key, 'w')[0], C.mean_over_workers(C.top_k(3), x, None, 'w',
                                                                                  mode='psum')[0]

  want = axis.run(step, 8, axis_name='w')(tree)
  got = axis.run(step, 8, axis_name='w', backend='shard_map')(tree)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), want, got)
  # The mean of the decoded payloads, computed directly.
  direct = np.mean([np.asarray(C.top_k(3)(tree['a'][i])) for i in range(8)], axis=0)
  np.testing.assert_allclose(want[1]['a'][0], direct, rtol=1e-5, atol=1e-6)


def test_bad_arguments_raise():
  with pytest.raises(ValueError, match='exactly one of k or ratio'):
    C.top_k()
  with pytest.raises(ValueError, match='ratio'):
    C.top_k(ratio=1.5)
  with pytest.raises(ValueError, match='levels'):
    C.qsgd(0)
  with pytest.raises(KeyError, match='unknown compressor'):
    registry.compressors.build('gzip')
  with pytest.raises(ValueError, match='needs a PRNG key'):
    C.random_k(2).compress(X, None)
  with pytest.raises(ValueError, match='too short'):
    C.top_k(2).decode(b'\x00', (8,), jnp.float32)


# ---------------------------------------------------------------------------------------------- FedZip


@pytest.mark.parametrize('encoding', fedzip.ENCODINGS)
def test_fedzip_encoding_round_trips_and_is_measured(encoding):
  x = jax.random.normal(jax.random.key(0), (60, 50)) * jnp.linspace(0, 2, 50)
  c = fedzip.fedzip(0.05, 3, encoding=encoding)
  p = jax.device_get(jax.jit(c.compress)(x, None))
  data = c.encode(p, x.shape, x.dtype)
  assert len(data) <= c.nbytes(x.shape, x.dtype)
  back = c.decode(data, x.shape, x.dtype)
  np.testing.assert_array_equal(back['indices'], p['indices'])
  np.testing.assert_array_equal(back['clusters'], p['clusters'])
  out = np.asarray(c.decompress(p, x.shape, x.dtype)).ravel()
  kept = np.argsort(-np.abs(np.asarray(x).ravel()))[:150]
  assert set(np.flatnonzero(out)) <= set(kept) and len(np.unique(out[out != 0])) <= 3
  # k-means: each kept value goes to its nearest centroid
  vals = np.asarray(x).ravel()[p['indices']]
  np.testing.assert_array_equal(p['clusters'], np.argmin(np.abs(vals[:, None] - p['centroids'][None]), 1))


def test_huffman_is_optimal_prefix_code():
  rng = np.random.default_rng(0)
  for _ in range(5):
    counts = rng.integers(1, 100, size=6)
    lengths = fedzip.huffman_lengths(counts)
    assert np.sum(2.0 ** -lengths) == pytest.approx(1.0)  # Kraft equality: a complete prefix code
    p = counts / counts.sum()
    entropy, mean_len = -np.sum(p * np.log2(p)), np.sum(p * lengths)
    assert entropy <= mean_len < entropy + 1
    codes = fedzip.canonical_codes(lengths)
    words = [format(int(c), f'0{int(n)}b') for c, n in zip(codes, lengths)]
    assert not any(a != b and b.startswith(a) for a in words for b in words)
