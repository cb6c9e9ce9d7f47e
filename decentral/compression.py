"""Gradient compressors as pure functions, each with the exact size of its encoding in bytes.

A :class:`Compressor` acts on one array ``x`` (any shape, any float dtype) and has five functions::

    payload = c.compress(x, key)                   # jittable; a dict of fixed-shape arrays
    x_hat   = c.decompress(payload, shape, dtype)  # jittable; the decoded array
    c.nbytes(shape, dtype) -> int                  # exact size of the encoding (static, from the shape)
    c.encode(payload, shape, dtype) -> bytes       # host (NumPy): the bytes that would go on the wire
    c.decode(data, shape, dtype) -> payload        # host: the inverse of ``encode``

``len(c.encode(payload, shape, dtype)) == c.nbytes(shape, dtype)`` for every compressor here (tested), and
``decompress(decode(encode(p, ...), ...))`` equals ``decompress(p)``. The in-memory payload is a convenient
jittable form (e.g. one ``int8`` per 3-bit code); ``encode`` packs it into the wire format whose length
``nbytes`` counts.
``key`` is a PRNG key (ignored by deterministic compressors; pass ``None`` to those). Wire conventions:

- indices use the smallest unsigned integer that holds ``d = x.size`` (:func:`index_dtype`);
- values travel in ``x.dtype`` (bf16 values cost 2 bytes), scales and norms in float32 (4 bytes);
- randomness the receiver must replay (random-k's coordinates, count-sketch hashes) is sent as the key's raw
  data (8 bytes for the default threefry key), so every payload decodes on its own;
- sub-byte codes are bit-packed, most significant bit first, and the last byte is zero-padded.

Compressors (``d = x.size``; omega is the variance parameter, E|C(x)-x|^2 <= omega |x|^2, of unbiased ones;
alpha the contraction, |C(x)-x|^2 <= (1-alpha)|x|^2, of biased ones):

======================  ========  =====================================  ====================================
factory                 unbiased  bytes                                  property
======================  ========  =====================================  ====================================
``identity()``          yes       d * itemsize                           exact
``top_k(k | ratio)``    no        k * (itemsize + index bytes)           alpha = k/d
``random_k(k | ratio)`` yes       k * itemsize + 8                       omega = d/k - 1 (scaled by d/k)
``sign()``              no        ceil(d/8) + 4                          (|x|_1/d) sign(x), Karimireddy et al.
``qsgd(levels)``        yes       4 + ceil(d * ceil(log2(2s+1)) / 8)     omega = min(d/s^2, sqrt(d)/s)
``natural()``           yes       ceil(9 d / 8)                          omega = 1/8 (Horvath et al.)
``int8()``              opt.      d + 4                                  absmax scale; stochastic => unbiased
``fp4_e3m0()``          opt.      ceil(d/2) + 4                          sign + 3-bit exponent, absmax scale
``low_rank(rank)``      no        (m + n) * rank * itemsize              PowerSGD-style; vectors sent dense
``count_sketch(r, c)``  mean dec  r * c * itemsize + 8                   median (or mean) decoder
======================  ========  =====================================  ====================================

``decentral.fedzip.fedzip`` (FedZip) and ``decentral.privacy.rqm`` (the randomized quantization mechanism) are
compressors too and join :func:`get` when their modules are imported (``import decentral`` does). FedZip's
size is data dependent: its ``nbytes`` is an upper bound and ``len(encode(...))`` the size sent.

Pytrees: :func:`compress_tree`, :func:`decompress_tree`, :func:`tree_nbytes`, :func:`encode_tree` and
:func:`roundtrip` apply a compressor leaf by leaf with keys ``fold_in(key, leaf_number)``; ravel the tree first
(``jax.flatten_util.ravel_pytree``) to compress it as one vector.

The worker axis: inside a per-worker step, :func:`gather_decode` all-gathers every worker's payloads and returns
the (weighted) mean of their decodings; :func:`mean_over_workers` compresses, communicates and returns
(mean, exact bytes this worker sent). The error-feedback transforms (:mod:`decentral.error_feedback`) and DGC
(:mod:`decentral.dgc`) build on these; byte counts go to :mod:`decentral.ledger`.

>>> import jax, jax.numpy as jnp
>>> c = top_k(2)
>>> x = jnp.array([0.1, -3.0, 0.5, 2.0])
>>> p = c.compress(x, None)
>>> c.decompress(p, x.shape, x.dtype)
Array([ 0., -3.,  0.,  2.], dtype=float32)
>>> c.nbytes(x.shape, x.dtype), len(c.encode(jax.device_get(p), x.shape, x.dtype))  # 2 float32 values + 2 uint8 indices
(10, 10)
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

PyTree = Any
Payload = dict
Shape = tuple

KEY_BYTES = 8  # raw data of the default (threefry) PRNG key: two uint32 words


class Compressor(NamedTuple):
  """A compressor of one array; see the module docstring for the contract."""

  name: str
  compress: Callable[[jax.Array, jax.Array | None], Payload]
  decompress: Callable[[Payload, Shape, Any], jax.Array]
  nbytes: Callable[[Shape, Any], int]
  encode: Callable[[Payload, Shape, Any], bytes]
  decode: Callable[[bytes, Shape, Any], Payload]
  unbiased: bool = False

  def __call__(self, x: jax.Array, key: jax.Array | None = None) -> jax.Array:
    """``decompress(compress(x, key))``: what the receiver reconstructs."""
    return self.decompress(self.compress(x, key), x.shape, x.dtype)


# ---------------------------------------------------------------------------------------------- wire helpers


def index_dtype(d: int) -> np.dtype:
  """The smallest unsigned integer dtype that holds the indices 0..d-1."""
  for dt in (np.uint8, np.uint16, np.uint32):
    if d <= np.iinfo(dt).max + 1:
      return np.dtype(dt)
  return np.dtype(np.uint64)


def _size(shape) -> int:
  return int(np.prod(shape, dtype=np.int64))


def _itemsize(dtype) -> int:
  return np.dtype(dtype).itemsize


def _count(k, ratio, d, name) -> int:
  """k from an explicit count or a ratio of d: ceil(ratio * d), at least 1, at most d (as DGC's code)."""
  if (k is None) == (ratio is None):
    raise ValueError(f'{name}: give exactly one of k or ratio')
  if k is not None:
    if not isinstance(k, (int, np.integer)) or k < 1:
      raise ValueError(f'{name}: k must be a positive integer, got {k!r}')
    return min(int(k), d)
  return min(d, max(1, int(math.ceil(ratio * d))))


def _check_count(k, ratio, name):
  if (k is None) == (ratio is None):
    raise ValueError(f'{name}: give exactly one of k or ratio')
  if k is not None and (not isinstance(k, (int, np.integer)) or k < 1):
    raise ValueError(f'{name}: k must be a positive integer, got {k!r}')
  _check_ratio(ratio, name)


def _check_ratio(ratio, name):
  if ratio is not None and not (0 < ratio <= 1 and math.isfinite(ratio)):
    raise ValueError(f'{name}: ratio must be in (0, 1], got {ratio!r}')


def pack_bits(codes: np.ndarray, width: int) -> bytes:
  """Packs non-negative integer codes of ``width`` bits each, MSB first; ceil(len * width / 8) bytes."""
  codes = np.asarray(codes, np.uint64).ravel()
  shifts = np.arange(width - 1, -1, -1, dtype=np.uint64)
  bits = ((codes[:, None] >> shifts) & np.uint64(1)).astype(np.uint8)
  return np.packbits(bits.ravel()).tobytes()


def unpack_bits(data: bytes, width: int, count: int) -> np.ndarray:
  """The inverse of :func:`pack_bits`: ``count`` codes of ``width`` bits (uint64)."""
  bits = np.unpackbits(np.frombuffer(data, np.uint8))[:count * width].reshape(count, width)
  return (bits.astype(np.uint64) << np.arange(width - 1, -1, -1, dtype=np.uint64)).sum(1)


def _key_data(key) -> jax.Array:
  return jax.random.key_data(key).astype(jnp.uint32).reshape(-1)


def _wrap(data) -> jax.Array:
  return jax.random.wrap_key_data(jnp.asarray(data, jnp.uint32))


def _reader(data: bytes):
  """Consumes ``data`` front to back: ``take(n) -> bytes``."""
  pos = [0]

  def take(n):
    out = data[pos[0]:pos[0] + n]
    if len(out) != n:
      raise ValueError(f'payload too short: wanted {n} bytes at offset {pos[0]}, have {len(data) - pos[0]}')
    pos[0] += n
    return out
  return take


def _np(a) -> np.ndarray:
  return np.asarray(jax.device_get(a))


# ---------------------------------------------------------------------------------------------- compressors


def identity() -> Compressor:
  """No compression: the dense array, d * itemsize bytes."""

  def compress(x, key):
    del key
    return {'values': x.reshape(-1)}

  def decompress(p, shape, dtype):
    return p['values'].reshape(shape).astype(dtype)

  def encode(p, shape, dtype):
    return _np(p['values']).tobytes()

  def decode(data, shape, dtype):
    return {'values': np.frombuffer(data, np.dtype(dtype)).copy()}

  return Compressor('identity', compress, decompress, lambda s, dt: _size(s) * _itemsize(dt), encode, decode,
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
    return _count(k, ratio, _size(shape), name)

  def compress(x, key):
    del key
    flat = x.reshape(-1)
    _, idx = jax.lax.top_k(jnp.abs(flat), kk(x.shape))
    return {'values': flat[idx], 'indices': idx.astype(jnp.int32)}

  def decompress(p, shape, dtype):
    return _scatter(p['values'], p['indices'], shape, dtype)

  def nbytes(shape, dtype):
    return kk(shape) * (_itemsize(dtype) + index_dtype(_size(shape)).itemsize)

  def encode(p, shape, dtype):
    values, idx = _np(p['values']), _np(p['indices'])
    return values.tobytes() + idx.astype(index_dtype(_size(shape))).tobytes()

  def decode(data, shape, dtype):
    n, take = kk(shape), _reader(data)
    values = np.frombuffer(take(n * _itemsize(dtype)), np.dtype(dtype))
    idx = np.frombuffer(take(n * index_dtype(_size(shape)).itemsize), index_dtype(_size(shape)))
    return {'values': values.copy(), 'indices': idx.astype(np.int32)}

  return Compressor(name, compress, decompress, nbytes, encode, decode)


def _scatter(values, idx, shape, dtype):
  d = _size(shape)
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
    return _count(k, ratio, _size(shape), 'random_k')

  def coords(key, shape):
    d = _size(shape)
    return jax.random.choice(key, d, (kk(shape),), replace=False)

  def compress(x, key):
    if key is None:
      raise ValueError('random_k needs a PRNG key')
    flat = x.reshape(-1)
    vals = flat[coords(key, x.shape)]
    if scale:
      vals = (vals.astype(jnp.float32) * (flat.size / kk(x.shape))).astype(x.dtype)
    return {'values': vals, 'key': _key_data(key)}

  def decompress(p, shape, dtype):
    return _scatter(p['values'], coords(_wrap(p['key']), shape), shape, dtype)

  def encode(p, shape, dtype):
    return _np(p['values']).tobytes() + _np(p['key']).astype(np.uint32).tobytes()

  def decode(data, shape, dtype):
    take = _reader(data)
    vals = np.frombuffer(take(kk(shape) * _itemsize(dtype)), np.dtype(dtype)).copy()
    return {'values': vals, 'key': np.frombuffer(take(KEY_BYTES), np.uint32).copy()}

  return Compressor('random_k', compress, decompress, lambda s, dt: kk(s) * _itemsize(dt) + KEY_BYTES, encode,
                    decode, unbiased=scale)


def sign() -> Compressor:
  """Scaled sign, C(x) = (|x|_1 / d) sign(x) (Karimireddy et al., 1901.09847): one bit per entry + a float32.

  Zero entries are sent as +1 (one bit cannot say zero). Biased; use it under error feedback.
  """

  def compress(x, key):
    del key
    flat = x.reshape(-1).astype(jnp.float32)
    return {'bits': flat >= 0, 'scale': jnp.mean(jnp.abs(flat))}

  def decompress(p, shape, dtype):
    return (jnp.where(p['bits'], 1.0, -1.0) * p['scale']).reshape(shape).astype(dtype)

  def encode(p, shape, dtype):
    return np.packbits(_np(p['bits']).astype(np.uint8)).tobytes() + np.float32(_np(p['scale'])).tobytes()

  def decode(data, shape, dtype):
    d, take = _size(shape), _reader(data)
    bits = np.unpackbits(np.frombuffer(take((d + 7) // 8), np.uint8))[:d].astype(bool)
    return {'bits': bits, 'scale': np.frombuffer(take(4), np.float32)[0]}

  return Compressor('sign', compress, decompress, lambda s, dt: (_size(s) + 7) // 8 + 4, encode, decode)


def qsgd(levels: int = 1, *, norm: str = 'l2') -> Compressor:
  """QSGD stochastic quantisation (Alistarh et al., 1610.02132): unbiased, s = ``levels`` levels.

  Q(x)_i = |x| sign(x_i) xi_i / s with xi_i = l + Bernoulli(s|x_i|/|x| - l), l = floor(s|x_i|/|x|), so
  E Q(x) = x and E|Q(x) - x|^2 <= min(d/s^2, sqrt(d)/s) |x|^2 for the l2 norm (Lemma 3.1). Encoding: the norm
  as float32 and each signed level in ceil(log2(2s+1)) bits (fixed width; the paper's Elias coding is shorter
  for sparse codes but variable-length).

  Args:
    levels: s >= 1.
    norm: 'l2' (the paper) or 'linf' (|x|_inf scale, lower variance; the same encoding).
  """
  if not isinstance(levels, (int, np.integer)) or levels < 1:
    raise ValueError(f'qsgd: levels must be a positive integer, got {levels!r}')
  if norm not in ('l2', 'linf'):
    raise ValueError(f"qsgd: norm must be 'l2' or 'linf', got {norm!r}")
  s = int(levels)
  width = int(math.ceil(math.log2(2 * s + 1)))
  code_dtype = jnp.int8 if s <= 127 else jnp.int32

  def compress(x, key):
    if key is None:
      raise ValueError('qsgd needs a PRNG key')
    flat = x.reshape(-1).astype(jnp.float32)
    scale = jnp.linalg.norm(flat) if norm == 'l2' else jnp.max(jnp.abs(flat))
    r = jnp.where(scale > 0, jnp.abs(flat) / jnp.where(scale > 0, scale, 1.0), 0.0) * s
    low = jnp.floor(r)
    level = low + (jax.random.uniform(key, r.shape) < r - low)
    return {'codes': (jnp.sign(flat) * level).astype(code_dtype), 'scale': scale}

  def decompress(p, shape, dtype):
    return (p['codes'].astype(jnp.float32) * (p['scale'] / s)).reshape(shape).astype(dtype)

  def encode(p, shape, dtype):
    return np.float32(_np(p['scale'])).tobytes() + pack_bits(_np(p['codes']).astype(np.int64) + s, width)

  def decode(data, shape, dtype):
    d, take = _size(shape), _reader(data)
    scale = np.frombuffer(take(4), np.float32)[0]
    codes = unpack_bits(take((d * width + 7) // 8), width, d).astype(np.int64) - s
    return {'codes': codes.astype(np.dtype(code_dtype)), 'scale': scale}

  return Compressor(f'qsgd{s}', compress, decompress, lambda sh, dt: 4 + (_size(sh) * width + 7) // 8, encode,
                    decode, unbiased=True)


def natural() -> Compressor:
  """Natural compression (Horvath et al., 1905.10988): stochastic rounding to a signed power of two.

  For 2^a <= |x| < 2^(a+1), C(x) = sign(x) 2^(a+1) w.p. (|x| - 2^a)/2^a, else sign(x) 2^a: unbiased with
  omega = 1/8. Encoding: a sign bit and the float32 biased exponent, 9 bits per entry (the paper's count).
  Zeros and float32 subnormals are sent as zero (code 0); values are computed in float32.
  """

  def compress(x, key):
    if key is None:
      raise ValueError('natural needs a PRNG key')
    flat = x.reshape(-1).astype(jnp.float32)
    mant, exp = jnp.frexp(jnp.abs(flat))  # |x| = mant 2^exp, mant in [0.5, 1): 2^(exp-1) <= |x| < 2^exp
    up = jax.random.uniform(key, flat.shape) < 2.0 * mant - 1.0
    biased = exp - 1 + up.astype(exp.dtype) + 127
    biased = jnp.where((flat == 0) | (biased <= 0), 0, jnp.minimum(biased, 254))
    return {'codes': ((flat < 0).astype(jnp.uint16) << 8) | biased.astype(jnp.uint16)}

  def decompress(p, shape, dtype):
    codes = p['codes'].astype(jnp.int32)
    biased = codes & 0xFF
    mag = jnp.where(biased == 0, 0.0, jnp.ldexp(jnp.ones_like(biased, jnp.float32), biased - 127))
    return jnp.where(codes >> 8 == 1, -mag, mag).reshape(shape).astype(dtype)

  def encode(p, shape, dtype):
    return pack_bits(_np(p['codes']), 9)

  def decode(data, shape, dtype):
    return {'codes': unpack_bits(data, 9, _size(shape)).astype(np.uint16)}

  return Compressor('natural', compress, decompress, lambda s, dt: (9 * _size(s) + 7) // 8, encode, decode,
                    unbiased=True)


def _round_to_levels(y, levels, key):
  """Rounds y (within [levels[0], levels[-1]]) to the sorted ``levels``: nearest, or unbiased if ``key``."""
  idx = jnp.clip(jnp.searchsorted(levels, y, side='right') - 1, 0, levels.shape[0] - 2)
  lo, hi = levels[idx], levels[idx + 1]
  frac = (y - lo) / (hi - lo)
  up = frac >= 0.5 if key is None else jax.random.uniform(key, y.shape) < frac
  return jnp.where(up, idx + 1, idx)


def int8(*, stochastic: bool = False) -> Compressor:
  """Symmetric int8 quantisation with an absmax float32 scale: q = round(127 x / max|x|); d + 4 bytes.

  Args:
    stochastic: round stochastically (unbiased) instead of to nearest; then ``compress`` needs a key.
  """

  def compress(x, key):
    if stochastic and key is None:
      raise ValueError('int8(stochastic=True) needs a PRNG key')
    flat = x.reshape(-1).astype(jnp.float32)
    scale = jnp.max(jnp.abs(flat))
    y = flat / jnp.where(scale > 0, scale, 1.0) * 127.0
    q = jnp.floor(y) + (jax.random.uniform(key, y.shape) < y - jnp.floor(y)) if stochastic else jnp.round(y)
    return {'q': jnp.clip(q, -127, 127).astype(jnp.int8), 'scale': scale}

  def decompress(p, shape, dtype):
    return (p['q'].astype(jnp.float32) * (p['scale'] / 127.0)).reshape(shape).astype(dtype)

  def encode(p, shape, dtype):
    return _np(p['q']).astype(np.int8).tobytes() + np.float32(_np(p['scale'])).tobytes()

  def decode(data, shape, dtype):
    d, take = _size(shape), _reader(data)
    return {'q': np.frombuffer(take(d), np.int8).copy(), 'scale': np.frombuffer(take(4), np.float32)[0]}

  return Compressor('int8', compress, decompress, lambda s, dt: _size(s) + 4, encode, decode,
                    unbiased=stochastic)


FP4_E3M0_LEVELS = np.concatenate([[0.0], 2.0 ** np.arange(-6, 1)]).astype(np.float32)  # 0, 2^-6 .. 2^0


def fp4_e3m0(*, stochastic: bool = False) -> Compressor:
  """4-bit floats with 1 sign and 3 exponent bits, no mantissa (E3M0), times an absmax float32 scale.

  Magnitude code e in 0..7 stands for 0 (e = 0) or scale * 2^(e-7), i.e. |x|/scale is rounded to
  {0, 2^-6, ..., 1/2, 1}. Two codes per byte: ceil(d/2) + 4 bytes. This is the outer-gradient format of
  Streaming DiLoCo (fake-quantised, accumulated in float32 by the caller).

  Args:
    stochastic: unbiased stochastic rounding between adjacent levels instead of nearest (needs a key).
  """
  levels = jnp.asarray(FP4_E3M0_LEVELS)

  def compress(x, key):
    if stochastic and key is None:
      raise ValueError('fp4_e3m0(stochastic=True) needs a PRNG key')
    flat = x.reshape(-1).astype(jnp.float32)
    scale = jnp.max(jnp.abs(flat))
    y = jnp.abs(flat) / jnp.where(scale > 0, scale, 1.0)
    e = _round_to_levels(y, levels, key if stochastic else None)
    return {'codes': (((flat < 0) & (e > 0)).astype(jnp.uint8) << 3) | e.astype(jnp.uint8), 'scale': scale}

  def decompress(p, shape, dtype):
    codes = p['codes'].astype(jnp.int32)
    mag = levels[codes & 7] * p['scale']
    return jnp.where(codes >> 3 == 1, -mag, mag).reshape(shape).astype(dtype)

  def encode(p, shape, dtype):
    return pack_bits(_np(p['codes']), 4) + np.float32(_np(p['scale'])).tobytes()

  def decode(data, shape, dtype):
    d, take = _size(shape), _reader(data)
    codes = unpack_bits(take((d + 1) // 2), 4, d).astype(np.uint8)
    return {'codes': codes, 'scale': np.frombuffer(take(4), np.float32)[0]}

  return Compressor('fp4_e3m0', compress, decompress, lambda s, dt: (_size(s) + 1) // 2 + 4, encode, decode,
                    unbiased=stochastic)


def low_rank(rank: int = 1, *, iterations: int = 1) -> Compressor:
  """PowerSGD-style rank-r approximation (Vogels et al., 1905.13727) of a tensor viewed as (shape[0], rest).

  From Q0 ~ N(0, I) (m x r, drawn from ``key``) it runs ``iterations`` power steps P = orth(M Q),
  Q = M^T P and sends P (n x r) and Q (m x r); the receiver forms P Q^T, the projection of M onto span(P).
  Tensors with fewer than two dimensions, or where (n + m) r >= n m, are sent dense, as PowerSGD does. This is
  the stateless compressor: PowerSGD's warm start (reusing Q across rounds) and its all-reduce of P between the
  two halves belong to a distributed transform, not to this per-worker map. Bytes: (n + m) r itemsize.
  """
  if not isinstance(rank, (int, np.integer)) or rank < 1:
    raise ValueError(f'low_rank: rank must be a positive integer, got {rank!r}')
  if not isinstance(iterations, (int, np.integer)) or iterations < 1:
    raise ValueError(f'low_rank: iterations must be a positive integer, got {iterations!r}')

  def dims(shape):
    if len(shape) < 2:
      return None
    n, m = shape[0], _size(shape[1:])
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
    return (_size(shape) if nm is None else (nm[0] + nm[1]) * rank) * _itemsize(dtype)

  def encode(p, shape, dtype):
    return b''.join(_np(p[k]).tobytes() for k in sorted(p))

  def decode(data, shape, dtype):
    nm, take = dims(shape), _reader(data)
    if nm is None:
      return {'values': np.frombuffer(take(_size(shape) * _itemsize(dtype)), np.dtype(dtype)).copy()}
    arrays = {}
    for k, rows in (('p', nm[0]), ('q', nm[1])):
      buf = take(rows * rank * _itemsize(dtype))
      arrays[k] = np.frombuffer(buf, np.dtype(dtype)).reshape(rows, rank).copy()
    return arrays

  return Compressor(f'low_rank{rank}', compress, decompress, nbytes, encode, decode)


def count_sketch(rows: int = 5, cols: int | None = None, *, ratio: float | None = None,
                 decoder: str = 'median') -> Compressor:
  """A count sketch (Charikar et al.; FetchSGD, 2007.07682): S[r, h_r(i)] += s_r(i) x_i, r < rows.

  Decoder: x_hat_i = median_r s_r(i) S[r, h_r(i)] (recovers heavy hitters), or the mean over rows, which is
  unbiased over the hashes with E|x_hat - x|^2 <= (d - 1)/(rows cols) |x|^2. The hashes come from ``key``;
  workers that share the key produce sketches that add linearly (sketch of the sum = sum of sketches).

  Args:
    rows: number of hash rows.
    cols: buckets per row, or
    ratio: total table size as a fraction of d, cols = ceil(ratio * d / rows).
    decoder: 'median' or 'mean'.

  Returns:
    A :class:`Compressor` sending the rows x cols table in x.dtype and the key (8 bytes).
  """
  if not isinstance(rows, (int, np.integer)) or rows < 1:
    raise ValueError(f'count_sketch: rows must be a positive integer, got {rows!r}')
  if decoder not in ('median', 'mean'):
    raise ValueError(f"count_sketch: decoder must be 'median' or 'mean', got {decoder!r}")
  _check_ratio(ratio, 'count_sketch')
  if (cols is None) == (ratio is None):
    raise ValueError('count_sketch: give exactly one of cols or ratio')
  if cols is not None and (not isinstance(cols, (int, np.integer)) or cols < 1):
    raise ValueError(f'count_sketch: cols must be a positive integer, got {cols!r}')

  def ncols(shape):
    return int(cols) if cols is not None else max(1, int(math.ceil(ratio * _size(shape) / rows)))

  def hashes(key, shape):
    d, c = _size(shape), ncols(shape)
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
    return {'table': table.astype(x.dtype), 'key': _key_data(key)}

  def decompress(p, shape, dtype):
    buckets, signs = hashes(_wrap(p['key']), shape)
    table = p['table'].astype(jnp.float32)
    est = signs * jnp.take_along_axis(table, buckets, axis=1)
    out = jnp.median(est, axis=0) if decoder == 'median' else jnp.mean(est, axis=0)
    return out.reshape(shape).astype(dtype)

  def encode(p, shape, dtype):
    return _np(p['table']).tobytes() + _np(p['key']).astype(np.uint32).tobytes()

  def decode(data, shape, dtype):
    take = _reader(data)
    c = ncols(shape)
    table = np.frombuffer(take(rows * c * _itemsize(dtype)), np.dtype(dtype)).reshape(rows, c).copy()
    return {'table': table, 'key': np.frombuffer(take(KEY_BYTES), np.uint32).copy()}

  return Compressor(f'count_sketch_{decoder}', compress, decompress,
                    lambda s, dt: rows * ncols(s) * _itemsize(dt) + KEY_BYTES, encode, decode,
                    unbiased=decoder == 'mean')


# ---------------------------------------------------------------------------------------------- registry


_FACTORIES: dict[str, Callable[..., Compressor]] = {
    'identity': identity, 'top_k': top_k, 'random_k': random_k, 'sign': sign, 'qsgd': qsgd,
    'natural': natural, 'int8': int8, 'fp4_e3m0': fp4_e3m0, 'low_rank': low_rank,
    'count_sketch': count_sketch,
}


def get(name: str, **kwargs) -> Compressor:
  """The compressor ``name`` built with ``kwargs`` (e.g. ``get('top_k', ratio=0.01)``)."""
  if name not in _FACTORIES:
    raise KeyError(f'unknown compressor {name!r}; known: {", ".join(sorted(_FACTORIES))}')
  return _FACTORIES[name](**kwargs)


def register(name: str, factory: Callable[..., Compressor]) -> Callable[..., Compressor]:
  """Adds a compressor factory to :func:`get` (used by :mod:`decentral.fedzip`)."""
  if name in _FACTORIES and _FACTORIES[name] is not factory:
    raise ValueError(f'compressor name {name!r} is already registered')
  _FACTORIES[name] = factory
  return factory


def names() -> list[str]:
  return sorted(_FACTORIES)


# ---------------------------------------------------------------------------------------------- pytrees


def _leaf_keys(key, n):
  return [None] * n if key is None else [jax.random.fold_in(key, i) for i in range(n)]


def compress_tree(c: Compressor, tree: PyTree, key: jax.Array | None) -> PyTree:
  """Compresses each leaf with key ``fold_in(key, leaf_number)``; returns the tree of payloads."""
  leaves, treedef = jax.tree.flatten(tree)
  payloads = [c.compress(x, k) for x, k in zip(leaves, _leaf_keys(key, len(leaves)))]
  return jax.tree.unflatten(treedef, payloads)


def decompress_tree(c: Compressor, payloads: PyTree, like: PyTree) -> PyTree:
  """Decodes a tree of payloads into arrays shaped like ``like`` (arrays or ShapeDtypeStructs)."""
  leaves, treedef = jax.tree.flatten(like)
  ps = treedef.flatten_up_to(payloads)
  return jax.tree.unflatten(treedef, [c.decompress(p, x.shape, x.dtype) for p, x in zip(ps, leaves)])


def tree_nbytes(c: Compressor, tree: PyTree) -> int:
  """Exact bytes of the leafwise encoding of ``tree`` (a static Python int, from shapes and dtypes)."""
  return sum(c.nbytes(np.shape(x), x.dtype) for x in jax.tree.leaves(tree))


def encode_tree(c: Compressor, payloads: PyTree, like: PyTree) -> bytes:
  """Host: the concatenated wire bytes of a tree of payloads (leaf order of ``like``)."""
  leaves, treedef = jax.tree.flatten(like)
  ps = treedef.flatten_up_to(payloads)
  return b''.join(c.encode(jax.device_get(p), np.shape(x), x.dtype) for p, x in zip(ps, leaves))


def roundtrip(c: Compressor, tree: PyTree, key: jax.Array | None) -> tuple[PyTree, int]:
  """(decoded tree, exact bytes sent): what a receiver reconstructs from this worker's ``tree``."""
  return decompress_tree(c, compress_tree(c, tree, key), tree), tree_nbytes(c, tree)


# ---------------------------------------------------------------------------------------------- the worker axis


def gather_decode(c: Compressor, payloads: PyTree, like: PyTree, axis_name: str, *,
                  weights: jax.Array | None = None, mode: str = 'gather') -> PyTree:
  """sum_j w_j decode(payload_j) over the workers j on ``axis_name`` (w_j = 1/n by default).

  Call inside a per-worker step with this worker's ``payloads`` (from :func:`compress_tree`).

  Args:
    c: the compressor that produced the payloads.
    payloads: this worker's tree of payloads.
    like: a tree of arrays (or ShapeDtypeStructs) giving the decoded shapes and dtypes.
    axis_name: the worker axis.
    weights: optional (n,) weights, the same on every worker; the mean if None.
    mode: 'gather' all-gathers the payloads and decodes every worker's (what moves is the payload, as on a
      real network); 'psum' sums the decoded trees (the same numbers up to float summation order).

  Returns:
    The weighted sum, in ``like``'s dtypes (accumulated in float32).
  """
  from jax import lax  # local: the compressors themselves need no collectives
  if mode not in ('gather', 'psum'):
    raise ValueError(f"mode must be 'gather' or 'psum', got {mode!r}")
  leaves, treedef = jax.tree.flatten(like)
  ps = treedef.flatten_up_to(payloads)
  outs = []
  for p, x in zip(ps, leaves):
    if mode == 'psum':
      mine = c.decompress(p, x.shape, jnp.float32)
      if weights is None:
        out = lax.pmean(mine, axis_name)
      else:
        out = lax.psum(mine * weights[lax.axis_index(axis_name)], axis_name)
    else:
      every = jax.vmap(lambda q, x=x: c.decompress(q, x.shape, jnp.float32))(
          jax.tree.map(lambda a: lax.all_gather(a, axis_name), p))
      out = jnp.mean(every, axis=0) if weights is None else jnp.tensordot(weights.astype(jnp.float32), every, 1)
    outs.append(out.astype(x.dtype))
  return jax.tree.unflatten(treedef, outs)


def mean_over_workers(c: Compressor, tree: PyTree, key: jax.Array | None, axis_name: str, *,
                      mode: str = 'gather') -> tuple[PyTree, int]:
  """Every worker compresses its ``tree``; returns (mean over workers of the decoded trees, bytes it sent).

  Call inside a per-worker step (``decentral.axis.run``). ``key`` should differ per worker for independent
  randomness (fold in ``decentral.axis.worker_index``) or be shared (count sketches that add linearly).

  Args:
    c: the compressor, applied leaf by leaf.
    tree: this worker's tree.
    key: PRNG key for the compressor (``None`` for deterministic ones).
    axis_name: the worker axis.
    mode: 'gather' or 'psum', as in :func:`gather_decode`.

  Returns:
    (mean of the decoded trees, in ``tree``'s dtypes; the exact bytes this worker sent, a static int).
  """
  payloads = compress_tree(c, tree, key)
  return gather_decode(c, payloads, tree, axis_name, mode=mode), tree_nbytes(c, tree)
