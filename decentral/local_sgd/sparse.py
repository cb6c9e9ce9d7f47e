"""SparseLoCo (Sarfi et al., arXiv 2508.15706): DiLoCo with top-k error feedback and 2-bit outer gradients.

:func:`sparseloco_compressor` is its compressor (chunk-wise top-k, then the kept values quantised to a few bits);
:func:`error_feedback_reducer` the reduction through an error-feedback buffer; :func:`sparseloco` the method.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from decentral import checks
from decentral.compression.trees import compress_tree, decompress_tree, tree_nbytes
from decentral.compression.wire import Compressor, pack_bits, unpack_bits
from decentral.local_sgd.core import Reducer, accumulation_dtype, local_sgd, mean_over, widen_tree


def _largest_divisor_at_most(n: int, target: int) -> int:
  """The largest divisor of n that is <= target (templar's ``_get_smaller_split``; 1 always divides)."""
  best = 1
  for d in range(1, int(math.isqrt(n)) + 1):
    if n % d == 0:
      for c in (d, n // d):
        if best < c <= target:
          best = c
  return best


class _Tiling(NamedTuple):
  rows: int
  cols: int
  tile_rows: int
  tile_cols: int

  @property
  def tiles(self):
    return (self.rows // self.tile_rows) * (self.cols // self.tile_cols)

  @property
  def tile_size(self):
    return self.tile_rows * self.tile_cols


def _tiling(shape, chunk):
  """2-D (and higher: leading axes flattened) leaves -> chunk x chunk tiles; vectors -> chunks of length chunk."""
  if len(shape) >= 2:
    rows, cols = int(np.prod(shape[:-1])), int(shape[-1])
    return _Tiling(rows, cols, _largest_divisor_at_most(rows, chunk), _largest_divisor_at_most(cols, chunk))
  n = int(np.prod(shape, dtype=np.int64))
  return _Tiling(1, n, 1, _largest_divisor_at_most(n, chunk))


def _to_tiles(x, t: _Tiling):
  x = x.reshape(t.rows // t.tile_rows, t.tile_rows, t.cols // t.tile_cols, t.tile_cols)
  return x.transpose(0, 2, 1, 3).reshape(t.tiles, t.tile_size)


def _from_tiles(tiles, t: _Tiling, shape):
  x = tiles.reshape(t.rows // t.tile_rows, t.cols // t.tile_cols, t.tile_rows, t.tile_cols)
  return x.transpose(0, 2, 1, 3).reshape(shape)


def sparseloco_compressor(*, chunk: int = 64, k: int = 64, bins: int = 4, range_sigmas: float = 6.0
                          ) -> Compressor:
  """SparseLoCo's compressor: chunk-wise top-k, then the kept values quantised to log2(bins) bits.

  A matrix (leading axes flattened) is cut into tiles of at most ``chunk`` x ``chunk`` entries (sides: the largest
  divisors of the dimensions not above ``chunk``), a vector into chunks of at most ``chunk``; each tile keeps its
  k entries of largest magnitude. The kept values v of the whole leaf are centred (shift = mean v), binned with
  width range_sigmas * std / bins around bin bins // 2, and decoded as shift + the mean of the centred values
  in their bin (a bins-entry float32 lookup table sent with the codes). Wire format per leaf:
  indices in ceil(log2(tile size)) bits each, codes in log2(bins) bits each (both bit-packed), then the shift
  and the lookup table as float32.

  Args:
    chunk: tile side (64 in templar's SparseLoCo configs, so 4096-entry tiles and 12-bit indices).
    k: entries kept per tile (64: 1.56% density for a 64 x 64 tile); capped at the tile size.
    bins: quantisation levels, a power of two >= 2 (4: 2-bit values).
    range_sigmas: the range the bins cover, in standard deviations of the kept values (6).

  Returns:
    A :class:`decentral.compression.Compressor` (deterministic; pass ``key=None``).

  Convention: follows templar's ``TopKCompressor`` + ``ChunkingTransformer`` (the SparseLoCo authors' code,
  without its DCT and its even-k rounding for 12-bit pair packing); indices are packed at the exact width.
  """
  chunk = checks.positive_int(chunk, 'chunk')
  k = checks.positive_int(k, 'k')
  bins = checks.positive_int(bins, 'bins')
  if bins < 2 or bins & (bins - 1):
    raise ValueError(f'bins must be a power of two >= 2, got {bins}')
  checks.positive_finite(range_sigmas, 'range_sigmas')
  code_bits = int(math.log2(bins))

  def kk(t):
    return min(k, t.tile_size)

  def index_bits(t):
    return max(1, math.ceil(math.log2(t.tile_size)))

  def compress(x, key):
    del key
    t = _tiling(x.shape, chunk)
    tiles = _to_tiles(x.astype(jnp.float32), t)
    _, idx = lax.top_k(jnp.abs(tiles), kk(t))
    vals = jnp.take_along_axis(tiles, idx, axis=1).reshape(-1)
    shift = jnp.mean(vals)
    centred = vals - shift
    n = vals.size
    std = jnp.linalg.norm(centred) / math.sqrt(max(n - 1, 1))
    scale = range_sigmas * std / bins
    scale = jnp.where((scale > 0) & jnp.isfinite(scale), scale, 1.0) if n > 1 else jnp.ones([], jnp.float32)
    codes = jnp.clip(jnp.round(centred / scale + bins // 2), 0, bins - 1).astype(jnp.int32)
    sums = jnp.zeros(bins, jnp.float32).at[codes].add(centred)
    counts = jnp.zeros(bins, jnp.float32).at[codes].add(1.0)
    lookup = jnp.where(counts > 0, sums / jnp.maximum(counts, 1.0), 0.0)
    return {'indices': idx.astype(jnp.int32), 'codes': codes.astype(jnp.uint8), 'shift': shift,
            'lookup': lookup}

  def decompress(p, shape, dtype):
    t = _tiling(tuple(shape), chunk)
    vals = (p['lookup'][p['codes'].astype(jnp.int32)] + p['shift']).reshape(t.tiles, kk(t))
    rows = jnp.arange(t.tiles)[:, None]
    tiles = jnp.zeros((t.tiles, t.tile_size), jnp.float32).at[rows, p['indices']].set(vals)
    return _from_tiles(tiles, t, tuple(shape)).astype(dtype)

  def nbytes(shape, dtype):
    t = _tiling(tuple(shape), chunk)
    kept = t.tiles * kk(t)
    return (kept * index_bits(t) + 7) // 8 + (kept * code_bits + 7) // 8 + 4 + 4 * bins

  def encode(p, shape, dtype):
    t = _tiling(tuple(shape), chunk)
    return (pack_bits(np.asarray(p['indices']).reshape(-1), index_bits(t))
            + pack_bits(np.asarray(p['codes']).reshape(-1), code_bits)
            + np.float32(np.asarray(p['shift'])).tobytes() + np.asarray(p['lookup'], np.float32).tobytes())

  def decode(data, shape, dtype):
    t = _tiling(tuple(shape), chunk)
    kept, pos = t.tiles * kk(t), 0
    n_idx = (kept * index_bits(t) + 7) // 8
    idx = unpack_bits(data[:n_idx], index_bits(t), kept).astype(np.int32).reshape(t.tiles, kk(t))
    pos = n_idx + (kept * code_bits + 7) // 8
    codes = unpack_bits(data[n_idx:pos], code_bits, kept).astype(np.uint8)
    shift = np.frombuffer(data[pos:pos + 4], np.float32)[0]
    lookup = np.frombuffer(data[pos + 4:pos + 4 + 4 * bins], np.float32).copy()
    if len(data) != pos + 4 + 4 * bins:
      raise ValueError(f'sparseloco payload has {len(data)} bytes, expected {pos + 4 + 4 * bins}')
    return {'indices': idx, 'codes': codes, 'shift': shift, 'lookup': lookup}

  return Compressor(f'sparseloco_top{k}_{code_bits}bit', compress, decompress, nbytes, encode, decode)


def error_feedback_reducer(compressor: Compressor, decay: float) -> Reducer:
  """SparseLoCo's reduction: e <- beta e + Delta_i; send C(e); e <- e - C(e); return mean_i C(e_i).

  The error-feedback buffer e (float32, per worker) is the reducer state; what is subtracted is exactly what
  was transmitted (the decoded, quantised top-k), so e_new + C(e) = beta e_old + Delta_i at every sync.
  """

  def apply(delta, ef, key, axis_name):
    acc = jax.tree.map(lambda e, d: decay * e + d, ef, delta)
    sent_tree = decompress_tree(compressor, compress_tree(compressor, acc, key), acc)
    ef = jax.tree.map(lambda a, s: a - s, acc, sent_tree)
    return mean_over(sent_tree, axis_name), ef, tree_nbytes(compressor, acc), None

  return Reducer(lambda params: jax.tree.map(lambda x: jnp.zeros(jnp.shape(x), accumulation_dtype(x)), params), apply,
                 lambda params: tree_nbytes(compressor, widen_tree(params)))


def sparseloco(inner: optax.GradientTransformation, *, sync_every: int, learning_rate: float = 1.0,
               decay: float = 0.95, chunk: int = 64, k: int = 64, bins: int = 4, range_sigmas: float = 6.0,
               axis_name: str | None = 'workers') -> optax.GradientTransformation:
  """SparseLoCo: DiLoCo whose outer momentum is replaced by top-k error feedback with 2-bit values.

  Every H steps, per worker r: e_r <- beta e_r + Delta_r; Delta^_r = Q(TopK_chunk(e_r)); e_r <- e_r - Delta^_r;
  then theta <- theta - alpha (1/R) sum_r Delta^_r on every worker (outer SGD without momentum).

  Args:
    inner: the inner optimizer (AdamW in the paper).
    sync_every: H.
    learning_rate: alpha, the outer learning rate (1.0 in templar's configs).
    decay: beta, the error-feedback decay (0.95).
    chunk, k, bins, range_sigmas: the compressor, see :func:`sparseloco_compressor` (64, 64, 4, 6: 1.56%
      density, 2-bit values, 12-bit indices).
    axis_name: the worker axis.

  Returns:
    A ``GradientTransformation`` (state :class:`decentral.local_sgd.LocalSGDState`; ``reducer_state`` is the buffer e).

  Reference: Sarfi et al., Communication Efficient LLM Pre-training with SparseLoCo, arXiv 2508.15706; defaults
  and the compressor from the authors' templar code (``hparams.json``, ``tplr/compress.py``). templar's
  validator also clips each peer's decoded update by norm before averaging; not done here (the paper's mean).
  """
  checks.unit_interval(decay, 'decay')
  checks.positive_finite(learning_rate, 'learning_rate')
  c = sparseloco_compressor(chunk=chunk, k=k, bins=bins, range_sigmas=range_sigmas)
  return local_sgd(inner, optax.sgd(learning_rate), sync_every=sync_every,
                   reducer=error_feedback_reducer(c, decay), axis_name=axis_name)
