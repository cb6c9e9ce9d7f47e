"""What a compressor is, and the wire format its payloads are encoded in.

A :class:`Compressor` acts on one array ``x`` (any shape, any float dtype) and has five functions::

    payload = c.compress(x, key)                   # jittable; a dict of fixed-shape arrays
    x_hat   = c.decompress(payload, shape, dtype)  # jittable; the decoded array
    c.nbytes(shape, dtype) -> int                  # exact size of the encoding (static, from the shape)
    c.encode(payload, shape, dtype) -> bytes       # host (NumPy): the bytes that would go on the wire
    c.decode(data, shape, dtype) -> payload        # host: the inverse of ``encode``

``len(c.encode(payload, shape, dtype)) == c.nbytes(shape, dtype)`` for every compressor with a fixed-size
encoding (tested), and ``decompress(decode(encode(p, ...), ...))`` equals ``decompress(p)``. The in-memory
payload is a convenient jittable form (e.g. one ``int8`` per 3-bit code); ``encode`` packs it into the wire
format whose length ``nbytes`` counts. ``key`` is a PRNG key (ignored by deterministic compressors; pass ``None``
to those). Wire conventions, with the helpers here:

- indices use the smallest unsigned integer that holds ``d = x.size`` (:func:`index_dtype`);
- values travel in ``x.dtype`` (bf16 values cost 2 bytes), scales and norms in float32 (4 bytes);
- randomness the receiver must replay (random-k's coordinates, count-sketch hashes) is sent as the key's raw
  data (:data:`KEY_BYTES` = 8 bytes for the default threefry key, :func:`key_data`), so every payload decodes on
  its own;
- sub-byte codes are bit-packed, most significant bit first, and the last byte is zero-padded
  (:func:`pack_bits`).

>>> pack_bits([1, 2, 3], 2), unpack_bits(b'\x6c', 2, 3).tolist()
(b'l', [1, 2, 3])
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

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


def index_dtype(d: int) -> np.dtype:
  """The smallest unsigned integer dtype that holds the indices 0..d-1."""
  for dt in (np.uint8, np.uint16, np.uint32):
    if d <= np.iinfo(dt).max + 1:
      return np.dtype(dt)
  return np.dtype(np.uint64)


def num_elements(shape) -> int:
  """d, the number of entries of an array of ``shape`` (exact, int64)."""
  return int(np.prod(shape, dtype=np.int64))


def itemsize(dtype) -> int:
  """Bytes per value of ``dtype`` on the wire."""
  return np.dtype(dtype).itemsize


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


def key_data(key) -> jax.Array:
  """A PRNG key's raw data as uint32 words: what travels so the receiver can replay the randomness."""
  return jax.random.key_data(key).astype(jnp.uint32).reshape(-1)


def wrap_key(data) -> jax.Array:
  """The PRNG key back from its raw data (the inverse of :func:`key_data`)."""
  return jax.random.wrap_key_data(jnp.asarray(data, jnp.uint32))


def reader(data: bytes):
  """Consumes ``data`` front to back: ``take(n) -> bytes``."""
  pos = [0]

  def take(n):
    out = data[pos[0]:pos[0] + n]
    if len(out) != n:
      raise ValueError(f'payload too short: wanted {n} bytes at offset {pos[0]}, have {len(data) - pos[0]}')
    pos[0] += n
    return out
  return take


def to_numpy(a) -> np.ndarray:
  """A payload array on the host, for ``encode``."""
  return np.asarray(jax.device_get(a))
