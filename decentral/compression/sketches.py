"""Low-rank and sketched compressors: PowerSGD-style rank-r factors and count sketches (FetchSGD).

Each factory returns a :class:`decentral.compression.wire.Compressor` with an exact wire size.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from decentral import checks
from decentral.compression.wire import (KEY_BYTES, Compressor, itemsize, key_data, num_elements, reader, to_numpy,
                                        wrap_key)


def low_rank(rank: int = 1, *, iterations: int = 1) -> Compressor:
  """PowerSGD-style rank-r approximation (Vogels et al., 1905.13727) of a tensor viewed as (shape[0], rest).

  From Q0 ~ N(0, I) (m x r, drawn from ``key``) it runs ``iterations`` power steps P = orth(M Q),
  Q = M^T P and sends P (n x r) and Q (m x r); the receiver forms P Q^T, the projection of M onto span(P).
  Tensors with fewer than two dimensions, or where (n + m) r >= n m, are sent dense, as PowerSGD does. This is
  the stateless compressor: PowerSGD's warm start (reusing Q across rounds) and its all-reduce of P between the
  two halves belong to a distributed transform, not to this per-worker map. Bytes: (n + m) r itemsize.
  """
  checks.positive_int(rank, 'low_rank: rank')
  checks.positive_int(iterations, 'low_rank: iterations')

  def dims(shape):
    if len(shape) < 2:
      return None
    n, m = shape[0], num_elements(shape[1:])
    return (n, m) if (n + m) * rank < n * m else None

  def compress(x, key):
    nm = dims(x.shape)
    if nm is None:
      return {'values': x.reshape(-1)}
    if key is None:
      raise ValueError('low_rank needs a PRNG key')
    mat = x.reshape(nm).astype(jnp.float32)
    q = jax.random.normal(key, (nm[1], rank), jnp.float32)
    for _ in range(iterations):
      p, _ = jnp.linalg.qr(mat @ q)
      q = mat.T @ p
    return {'p': p.astype(x.dtype), 'q': q.astype(x.dtype)}

  def decompress(p, shape, dtype):
    if 'values' in p:
      return p['values'].reshape(shape).astype(dtype)
    return (p['p'].astype(jnp.float32) @ p['q'].astype(jnp.float32).T).reshape(shape).astype(dtype)

  def nbytes(shape, dtype):
    nm = dims(shape)
    return (num_elements(shape) if nm is None else (nm[0] + nm[1]) * rank) * itemsize(dtype)

  def encode(p, shape, dtype):
    return b''.join(to_numpy(p[k]).tobytes() for k in sorted(p))

  def decode(data, shape, dtype):
    nm, take = dims(shape), reader(data)
    if nm is None:
      return {'values': np.frombuffer(take(num_elements(shape) * itemsize(dtype)), np.dtype(dtype)).copy()}
    arrays = {}
    for k, rows in (('p', nm[0]), ('q', nm[1])):
      buf = take(rows * rank * itemsize(dtype))
      arrays[k] = np.frombuffer(buf, np.dtype(dtype)).reshape(rows, rank).copy()
    return arrays

  return Compressor(f'low_rank{rank}', compress, decompress, nbytes, encode, decode)


def count_sketch(rows: int = 5, cols: int | None = None, *, ratio: float | None = None,
                 decoder: str = 'median') -> Compressor:
  """A count sketch (Charikar et al.; FetchSGD, 2007.07682): S[r, h_r(i)] += s_r(i) x_i, r < rows.

  Decoder: x_hat_i = median_r s_r(i) S[r, h_r(i)] (recovers heavy hitters), or the mean over rows, which is
  unbiased over the hashes with ``E|x_hat - x|^2 <= (d - 1)/(rows cols) |x|^2``. The hashes come from ``key``;
  workers that share the key produce sketches that add linearly (sketch of the sum = sum of sketches).

  Args:
    rows: number of hash rows.
    cols: buckets per row, or
    ratio: total table size as a fraction of d, cols = ceil(ratio * d / rows).
    decoder: 'median' or 'mean'.

  Returns:
    A :class:`Compressor` sending the rows x cols table in x.dtype and the key (8 bytes).
  """
  checks.positive_int(rows, 'count_sketch: rows')
  if decoder not in ('median', 'mean'):
    raise ValueError(f"count_sketch: decoder must be 'median' or 'mean', got {decoder!r}")
  checks.fraction(ratio, 'count_sketch: ratio', optional=True)
  if (cols is None) == (ratio is None):
    raise ValueError('count_sketch: give exactly one of cols or ratio')
  if cols is not None:
    checks.positive_int(cols, 'count_sketch: cols')

  def ncols(shape):
    return int(cols) if cols is not None else max(1, int(math.ceil(ratio * num_elements(shape) / rows)))

  def hashes(key, shape):
    d, c = num_elements(shape), ncols(shape)
    kb, ks = jax.random.split(key)
    buckets = jax.random.randint(kb, (rows, d), 0, c)
    signs = jax.random.rademacher(ks, (rows, d), jnp.float32)
    return buckets, signs

  def compress(x, key):
    if key is None:
      raise ValueError('count_sketch needs a PRNG key')
    buckets, signs = hashes(key, x.shape)
    flat = x.reshape(-1).astype(jnp.float32)
    table = jax.vmap(lambda b, s: jax.ops.segment_sum(s * flat, b, ncols(x.shape)))(buckets, signs)
    return {'table': table.astype(x.dtype), 'key': key_data(key)}

  def decompress(p, shape, dtype):
    buckets, signs = hashes(wrap_key(p['key']), shape)
    table = p['table'].astype(jnp.float32)
    est = signs * jnp.take_along_axis(table, buckets, axis=1)
    out = jnp.median(est, axis=0) if decoder == 'median' else jnp.mean(est, axis=0)
    return out.reshape(shape).astype(dtype)

  def encode(p, shape, dtype):
    return to_numpy(p['table']).tobytes() + to_numpy(p['key']).astype(np.uint32).tobytes()

  def decode(data, shape, dtype):
    take = reader(data)
    c = ncols(shape)
    table = np.frombuffer(take(rows * c * itemsize(dtype)), np.dtype(dtype)).reshape(rows, c).copy()
    return {'table': table, 'key': np.frombuffer(take(KEY_BYTES), np.uint32).copy()}

  return Compressor(f'count_sketch_{decoder}', compress, decompress,
                    lambda s, dt: rows * ncols(s) * itemsize(dt) + KEY_BYTES, encode, decode,
                    unbiased=decoder == 'mean')
