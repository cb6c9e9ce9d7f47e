"""Sparsifiers: keep k of the d entries of an array, the largest (top-k) or random ones (random-k).

Each factory returns a :class:`decentral.compression.wire.Compressor` with an exact wire size; :func:`identity`
(no compression) is the dense reference.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from decentral import checks
from decentral.compression.wire import (KEY_BYTES, Compressor, index_dtype, itemsize, key_data, num_elements, reader,
                                        to_numpy, wrap_key)


def _count(k, ratio, d, name) -> int:
  """k from an explicit count or a ratio of d: ceil(ratio * d), at least 1, at most d (as DGC's code)."""
  if (k is None) == (ratio is None):
    raise ValueError(f'{name}: give exactly one of k or ratio')
  if k is not None:
    return min(checks.positive_int(k, f'{name}: k'), d)
  return min(d, max(1, int(math.ceil(ratio * d))))


def _check_count(k, ratio, name):
  if (k is None) == (ratio is None):
    raise ValueError(f'{name}: give exactly one of k or ratio')
  if k is not None:
    checks.positive_int(k, f'{name}: k')
  checks.fraction(ratio, f'{name}: ratio', optional=True)


def identity() -> Compressor:
  """No compression: the dense array, d * itemsize bytes."""

  def compress(x, key):
    del key
    return {'values': x.reshape(-1)}

  def decompress(p, shape, dtype):
    return p['values'].reshape(shape).astype(dtype)

  def encode(p, shape, dtype):
    return to_numpy(p['values']).tobytes()

  def decode(data, shape, dtype):
    return {'values': np.frombuffer(data, np.dtype(dtype)).copy()}

  return Compressor('identity', compress, decompress, lambda s, dt: num_elements(s) * itemsize(dt), encode, decode,
                    unbiased=True)


def top_k(k: int | None = None, *, ratio: float | None = None) -> Compressor:
  """The k entries of largest magnitude (exact, ``lax.top_k``; ties go to the lower index); alpha = k/d.

  Args:
    k: number of entries kept (capped at d), or
    ratio: density; k = ceil(ratio * d) (at least 1), as DGC's ``compress_ratio``.

  Returns:
    A :class:`Compressor` sending k values (x.dtype) and k indices (:func:`index_dtype`).
  """
  _check_count(k, ratio, 'top_k')
  name = 'top_k'

  def kk(shape):
    return _count(k, ratio, num_elements(shape), name)

  def compress(x, key):
    del key
    flat = x.reshape(-1)
    _, idx = jax.lax.top_k(jnp.abs(flat), kk(x.shape))
    return {'values': flat[idx], 'indices': idx.astype(jnp.int32)}

  def decompress(p, shape, dtype):
    return _scatter(p['values'], p['indices'], shape, dtype)

  def nbytes(shape, dtype):
    return kk(shape) * (itemsize(dtype) + index_dtype(num_elements(shape)).itemsize)

  def encode(p, shape, dtype):
    values, idx = to_numpy(p['values']), to_numpy(p['indices'])
    return values.tobytes() + idx.astype(index_dtype(num_elements(shape))).tobytes()

  def decode(data, shape, dtype):
    n, take = kk(shape), reader(data)
    values = np.frombuffer(take(n * itemsize(dtype)), np.dtype(dtype))
    idx = np.frombuffer(take(n * index_dtype(num_elements(shape)).itemsize), index_dtype(num_elements(shape)))
    return {'values': values.copy(), 'indices': idx.astype(np.int32)}

  return Compressor(name, compress, decompress, nbytes, encode, decode)


def _scatter(values, idx, shape, dtype):
  d = num_elements(shape)
  return jnp.zeros((d,), dtype).at[idx].add(values.astype(dtype)).reshape(shape)


def random_k(k: int | None = None, *, ratio: float | None = None, scale: bool = True) -> Compressor:
  """k coordinates drawn uniformly without replacement, scaled by d/k: unbiased with omega = d/k - 1.

  The receiver replays the coordinates from the key, so the payload is the k values and the key's 8 bytes.

  Args:
    k: number of coordinates kept, or
    ratio: density, k = ceil(ratio * d).
    scale: multiply by d/k (unbiased); False gives the contractive, biased rand-k (alpha = k/d).
  """
  _check_count(k, ratio, 'random_k')

  def kk(shape):
    return _count(k, ratio, num_elements(shape), 'random_k')

  def coords(key, shape):
    d = num_elements(shape)
    return jax.random.choice(key, d, (kk(shape),), replace=False)

  def compress(x, key):
    if key is None:
      raise ValueError('random_k needs a PRNG key')
    flat = x.reshape(-1)
    vals = flat[coords(key, x.shape)]
    if scale:
      vals = (vals.astype(jnp.float32) * (flat.size / kk(x.shape))).astype(x.dtype)
    return {'values': vals, 'key': key_data(key)}

  def decompress(p, shape, dtype):
    return _scatter(p['values'], coords(wrap_key(p['key']), shape), shape, dtype)

  def encode(p, shape, dtype):
    return to_numpy(p['values']).tobytes() + to_numpy(p['key']).astype(np.uint32).tobytes()

  def decode(data, shape, dtype):
    take = reader(data)
    vals = np.frombuffer(take(kk(shape) * itemsize(dtype)), np.dtype(dtype)).copy()
    return {'values': vals, 'key': np.frombuffer(take(KEY_BYTES), np.uint32).copy()}

  return Compressor('random_k', compress, decompress, lambda s, dt: kk(s) * itemsize(dt) + KEY_BYTES, encode,
                    decode, unbiased=scale)
