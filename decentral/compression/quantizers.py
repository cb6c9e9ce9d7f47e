"""Quantizers: fewer bits per entry. Scaled sign, QSGD, natural compression, int8 and FP4 (E3M0).

Each factory returns a :class:`decentral.compression.wire.Compressor` with an exact wire size; the stochastic
ones are unbiased.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from decentral import checks
from decentral.compression.wire import Compressor, num_elements, pack_bits, reader, to_numpy, unpack_bits


def sign() -> Compressor:
  """Scaled sign, ``C(x) = (|x|_1 / d) sign(x)`` (Karimireddy et al., 1901.09847): one bit per entry + a float32.

  Zero entries are sent as +1 (one bit cannot say zero). Biased; use it under error feedback.
  """

  def compress(x, key):
    del key
    flat = x.reshape(-1).astype(jnp.float32)
    return {'bits': flat >= 0, 'scale': jnp.mean(jnp.abs(flat))}

  def decompress(p, shape, dtype):
    return (jnp.where(p['bits'], 1.0, -1.0) * p['scale']).reshape(shape).astype(dtype)

  def encode(p, shape, dtype):
    return np.packbits(to_numpy(p['bits']).astype(np.uint8)).tobytes() + np.float32(to_numpy(p['scale'])).tobytes()

  def decode(data, shape, dtype):
    d, take = num_elements(shape), reader(data)
    bits = np.unpackbits(np.frombuffer(take((d + 7) // 8), np.uint8))[:d].astype(bool)
    return {'bits': bits, 'scale': np.frombuffer(take(4), np.float32)[0]}

  return Compressor('sign', compress, decompress, lambda s, dt: (num_elements(s) + 7) // 8 + 4, encode, decode)


def qsgd(levels: int = 1, *, norm: str = 'l2') -> Compressor:
  """QSGD stochastic quantisation (Alistarh et al., 1610.02132): unbiased, s = ``levels`` levels.

  ``Q(x)_i = |x| sign(x_i) xi_i / s`` with ``xi_i = l + Bernoulli(s|x_i|/|x| - l)``, ``l = floor(s|x_i|/|x|)``, so
  ``E Q(x) = x`` and ``E|Q(x) - x|^2 <= min(d/s^2, sqrt(d)/s) |x|^2`` for the l2 norm (Lemma 3.1). Encoding: the norm
  as float32 and each signed level in ceil(log2(2s+1)) bits (fixed width; the paper's Elias coding is shorter
  for sparse codes but variable-length).

  Args:
    levels: s >= 1.
    norm: 'l2' (the paper) or 'linf' (``|x|_inf`` scale, lower variance; the same encoding).
  """
  checks.positive_int(levels, 'qsgd: levels')
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
    return np.float32(to_numpy(p['scale'])).tobytes() + pack_bits(to_numpy(p['codes']).astype(np.int64) + s, width)

  def decode(data, shape, dtype):
    d, take = num_elements(shape), reader(data)
    scale = np.frombuffer(take(4), np.float32)[0]
    codes = unpack_bits(take((d * width + 7) // 8), width, d).astype(np.int64) - s
    return {'codes': codes.astype(np.dtype(code_dtype)), 'scale': scale}

  return Compressor(f'qsgd{s}', compress, decompress, lambda sh, dt: 4 + (num_elements(sh) * width + 7) // 8, encode,
                    decode, unbiased=True)


def natural() -> Compressor:
  """Natural compression (Horvath et al., 1905.10988): stochastic rounding to a signed power of two.

  For ``2^a <= |x| < 2^(a+1)``, ``C(x) = sign(x) 2^(a+1)`` w.p. ``(|x| - 2^a)/2^a``, else ``sign(x) 2^a``: unbiased with
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
    return pack_bits(to_numpy(p['codes']), 9)

  def decode(data, shape, dtype):
    return {'codes': unpack_bits(data, 9, num_elements(shape)).astype(np.uint16)}

  return Compressor('natural', compress, decompress, lambda s, dt: (9 * num_elements(s) + 7) // 8, encode, decode,
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
    return to_numpy(p['q']).astype(np.int8).tobytes() + np.float32(to_numpy(p['scale'])).tobytes()

  def decode(data, shape, dtype):
    d, take = num_elements(shape), reader(data)
    return {'q': np.frombuffer(take(d), np.int8).copy(), 'scale': np.frombuffer(take(4), np.float32)[0]}

  return Compressor('int8', compress, decompress, lambda s, dt: num_elements(s) + 4, encode, decode,
                    unbiased=stochastic)


FP4_E3M0_LEVELS = np.concatenate([[0.0], 2.0 ** np.arange(-6, 1)]).astype(np.float32)  # 0, 2^-6 .. 2^0


def fp4_e3m0(*, stochastic: bool = False) -> Compressor:
  """4-bit floats with 1 sign and 3 exponent bits, no mantissa (E3M0), times an absmax float32 scale.

  Magnitude code e in 0..7 stands for 0 (e = 0) or scale * 2^(e-7), i.e. ``|x|/scale`` is rounded to
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
    return pack_bits(to_numpy(p['codes']), 4) + np.float32(to_numpy(p['scale'])).tobytes()

  def decode(data, shape, dtype):
    d, take = num_elements(shape), reader(data)
    codes = unpack_bits(take((d + 1) // 2), 4, d).astype(np.uint8)
    return {'codes': codes, 'scale': np.frombuffer(take(4), np.float32)[0]}

  return Compressor('fp4_e3m0', compress, decompress, lambda s, dt: (num_elements(s) + 1) // 2 + 4, encode, decode,
                    unbiased=stochastic)
