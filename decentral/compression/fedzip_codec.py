"""FedZip (Malekijoo et al., 2102.01593): top-z sparsification, k-means quantisation, entropy/position coding.

Per leaf (layer-wise, as the paper): keep the z = ceil(ratio x d) entries of largest magnitude, replace each
kept value by the nearest of K centroids found by 1-D k-means (Lloyd, ``iterations`` steps from evenly spaced
quantiles; the paper uses K = 3), then encode. The jitted half (:meth:`Compressor.compress` /
``decompress``) produces and decodes the fixed-shape payload ``{indices, clusters, centroids}``; the wire
bytes are produced on the host by ``encode`` and their length is *measured*, not estimated:

- ``'huffman'``: the whole layer as symbols {0 = dropped, 1..K = cluster}, canonical-Huffman coded;
- ``'position'``: each kept entry's position in the smallest unsigned integer holding d, plus its
  Huffman-coded cluster index;
- ``'difference'`` (default): the gaps between sorted positions Elias-gamma coded ("difference of address"),
  plus the Huffman-coded cluster indices.

Every encoding starts with a header: z (uint32), the K centroids (float32) and the K + 1 Huffman code lengths
(one byte each). The size is data dependent, so ``nbytes(shape, dtype)`` is an upper bound for FedZip (the other
compressors' ``nbytes`` are exact); ``len(encode(payload, shape, dtype))`` is the size sent, and what the
experiments log.

>>> import jax, jax.numpy as jnp
>>> c = fedzip(ratio=0.5, clusters=2)
>>> x = jnp.array([0.0, 5.0, 0.1, -4.0, 5.2, 0.0, -3.8, 0.2])
>>> p = c.compress(x, None)
>>> c.decompress(p, x.shape, x.dtype)
Array([ 0. ,  5.1,  0. , -3.9,  5.1,  0. , -3.9,  0. ], dtype=float32)
>>> len(c.encode(jax.device_get(p), x.shape, x.dtype)) <= c.nbytes(x.shape, x.dtype)
True
"""

from __future__ import annotations

import heapq
import math

import jax
import jax.numpy as jnp
import numpy as np

from decentral import checks
from decentral.compression.wire import Compressor, index_dtype

ENCODINGS = ('huffman', 'position', 'difference')


# ---------------------------------------------------------------------------------------------- bit streams


def _write(codes: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, int]:
  """The bit sequence of the variable-length ``codes`` (value, length in bits), MSB first."""
  codes, lengths = np.asarray(codes, np.uint64), np.asarray(lengths, np.int64)
  total = int(lengths.sum())
  if total == 0:
    return np.zeros(0, np.uint8), 0
  starts = np.cumsum(lengths) - lengths
  owner = np.repeat(np.arange(len(lengths)), lengths)
  shift = (np.repeat(lengths, lengths) - 1 - (np.arange(total) - starts[owner])).astype(np.uint64)
  return ((codes[owner] >> shift) & np.uint64(1)).astype(np.uint8), total


def _pack(bits: np.ndarray) -> bytes:
  return np.packbits(bits).tobytes()


class _BitReader:

  def __init__(self, data: bytes):
    self.bits = np.unpackbits(np.frombuffer(data, np.uint8))
    self.pos = 0

  def bit(self) -> int:
    b = int(self.bits[self.pos])
    self.pos += 1
    return b


def huffman_lengths(counts: np.ndarray) -> np.ndarray:
  """Code lengths of a Huffman code for symbol ``counts`` (0 for unused symbols; 1 if only one is used)."""
  counts = np.asarray(counts, np.int64)
  used = np.flatnonzero(counts > 0)
  lengths = np.zeros(len(counts), np.int64)
  if len(used) == 1:
    lengths[used] = 1
    return lengths
  heap = [(int(counts[s]), int(s), (int(s),)) for s in used]  # (weight, tie-break, symbols)
  heapq.heapify(heap)
  while len(heap) > 1:
    w1, t1, s1 = heapq.heappop(heap)
    w2, t2, s2 = heapq.heappop(heap)
    for s in s1 + s2:
      lengths[s] += 1
    heapq.heappush(heap, (w1 + w2, min(t1, t2), s1 + s2))
  return lengths


def canonical_codes(lengths: np.ndarray) -> np.ndarray:
  """Canonical Huffman codes for the given lengths (symbols ordered by (length, symbol))."""
  codes = np.zeros(len(lengths), np.int64)
  code, prev = 0, 0
  for s in sorted(np.flatnonzero(lengths > 0), key=lambda s: (lengths[s], s)):
    code <<= int(lengths[s]) - prev
    codes[s], prev = code, int(lengths[s])
    code += 1
  return codes


def _huffman_decoder(lengths):
  codes = canonical_codes(lengths)
  return {(int(lengths[s]), int(codes[s])): int(s) for s in np.flatnonzero(lengths > 0)}


def _read_symbol(reader, table, max_len):
  code = 0
  for n in range(1, max_len + 1):
    code = (code << 1) | reader.bit()
    if (n, code) in table:
      return table[(n, code)]
  raise ValueError('corrupt Huffman stream')


def _gamma(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Elias-gamma codes of positive integers: floor(log2 x) zeros, then x in binary."""
  x = np.asarray(x, np.int64)
  nbits = np.array([int(v).bit_length() for v in x], np.int64)  # exact, unlike float log2
  return x, 2 * nbits - 1


def _read_gamma(reader) -> int:
  zeros = 0
  while reader.bit() == 0:
    zeros += 1
  value = 1
  for _ in range(zeros):
    value = (value << 1) | reader.bit()
  return value


# ---------------------------------------------------------------------------------------------- the compressor


def _kmeans_1d(values, clusters, iterations):
  """Lloyd's algorithm on the real line from evenly spaced quantiles; empty clusters keep their centroid."""
  qs = (jnp.arange(clusters) + 0.5) / clusters
  centroids = jnp.quantile(values, qs)

  def step(_, centroids):
    assign = jnp.argmin(jnp.abs(values[:, None] - centroids[None, :]), axis=1)
    onehot = jax.nn.one_hot(assign, clusters, dtype=values.dtype)
    sums, counts = onehot.T @ values, onehot.sum(0)
    return jnp.where(counts > 0, sums / jnp.maximum(counts, 1), centroids)

  centroids = jax.lax.fori_loop(0, iterations, step, centroids)
  return centroids, jnp.argmin(jnp.abs(values[:, None] - centroids[None, :]), axis=1)


def fedzip(ratio: float = 0.1, clusters: int = 3, *, encoding: str = 'difference',
           iterations: int = 10) -> Compressor:
  """FedZip's per-layer pipeline as a :class:`decentral.compression.Compressor` (biased).

  Args:
    ratio: fraction z/d of entries kept per leaf (top-z by magnitude).
    clusters: K, the number of k-means centroids (the paper's choice: 3).
    encoding: 'huffman', 'position' or 'difference' (see the module docstring).
    iterations: Lloyd iterations.

  Returns:
    A compressor whose ``encode`` produces the real bytes and whose ``nbytes`` is an upper bound on them.
  """
  checks.fraction(ratio, 'fedzip: ratio')
  if not isinstance(clusters, int) or not 1 <= clusters <= 255:
    raise ValueError(f'fedzip: clusters must be an integer in [1, 255], got {clusters!r}')
  if encoding not in ENCODINGS:
    raise ValueError(f'fedzip: encoding must be one of {ENCODINGS}, got {encoding!r}')
  K = clusters

  def zz(shape):
    d = math.prod(shape)
    return min(d, max(1, int(math.ceil(ratio * d))))

  def compress(x, key):
    del key
    flat = x.reshape(-1).astype(jnp.float32)
    _, idx = jax.lax.top_k(jnp.abs(flat), zz(x.shape))
    idx = jnp.sort(idx)
    centroids, assign = _kmeans_1d(flat[idx], K, iterations)
    return {'indices': idx.astype(jnp.int32), 'clusters': assign.astype(jnp.uint8), 'centroids': centroids}

  def decompress(p, shape, dtype):
    d = math.prod(shape)
    vals = p['centroids'][p['clusters'].astype(jnp.int32)]
    return jnp.zeros(d, jnp.float32).at[p['indices']].set(vals).reshape(shape).astype(dtype)

  def header_bytes():
    return 4 + 4 * K + (K + 1)

  def nbytes(shape, dtype):
    del dtype
    d, z = math.prod(shape), zz(shape)
    if encoding == 'huffman':  # Huffman over K + 1 symbols: at most K bits each
      bits = d * K
    elif encoding == 'position':
      bits = z * (8 * index_dtype(d).itemsize + K)
    else:  # gaps <= d: gamma length <= 2 floor(log2 d) + 1
      bits = z * (2 * (d.bit_length() - 1) + 1 + K)
    return header_bytes() + (bits + 7) // 8

  def encode(p, shape, dtype):
    del dtype
    d = math.prod(shape)
    idx = np.asarray(p['indices'], np.int64)
    cl = np.asarray(p['clusters'], np.int64) + 1  # symbol 0 stands for a dropped entry
    if encoding == 'huffman':
      symbols = np.zeros(d, np.int64)
      symbols[idx] = cl
    else:
      symbols = cl
    lengths = huffman_lengths(np.bincount(symbols, minlength=K + 1))
    codes = canonical_codes(lengths)
    head = (np.uint32(len(idx)).tobytes() + np.asarray(p['centroids'], np.float32).tobytes()
            + lengths.astype(np.uint8).tobytes())
    sym_bits, _ = _write(codes[symbols], lengths[symbols])
    if encoding == 'huffman':
      return head + _pack(sym_bits)
    if encoding == 'position':
      width = 8 * index_dtype(d).itemsize
      pos_bits, _ = _write(idx, np.full(len(idx), width))
    else:
      gaps = np.diff(np.concatenate([[-1], idx]))  # first gap is position + 1 >= 1
      pos_bits, _ = _write(*_gamma(gaps))
    return head + _pack(np.concatenate([pos_bits, sym_bits]))

  def decode(data, shape, dtype):
    del dtype
    d = math.prod(shape)
    z = int(np.frombuffer(data[:4], np.uint32)[0])
    centroids = np.frombuffer(data[4:4 + 4 * K], np.float32).copy()
    lengths = np.frombuffer(data[4 + 4 * K:header_bytes()], np.uint8).astype(np.int64)
    table, max_len = _huffman_decoder(lengths), int(lengths.max())
    reader = _BitReader(data[header_bytes():])
    if encoding == 'huffman':
      symbols = np.array([_read_symbol(reader, table, max_len) for _ in range(d)], np.int64)
      idx = np.flatnonzero(symbols)
      cl = symbols[idx]
    else:
      if encoding == 'position':
        width = 8 * index_dtype(d).itemsize
        idx = np.array([sum(reader.bit() << (width - 1 - b) for b in range(width)) for _ in range(z)], np.int64)
      else:
        idx = np.cumsum([_read_gamma(reader) for _ in range(z)]) - 1
      cl = np.array([_read_symbol(reader, table, max_len) for _ in range(z)], np.int64)
    return {'indices': np.asarray(idx, np.int32), 'clusters': (cl - 1).astype(np.uint8), 'centroids': centroids}

  return Compressor(f'fedzip_{encoding}', compress, decompress, nbytes, encode, decode)

