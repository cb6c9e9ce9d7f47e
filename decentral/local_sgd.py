"""Local SGD with an outer optimizer: DiLoCo, Streaming DiLoCo and SparseLoCo, per worker on a named axis.

Every worker runs an optax ``inner`` optimizer on its own data. Every H steps it forms the pseudo-gradient
(outer gradient) Delta_i = theta_anchor - theta_i, the workers reduce it across ``axis_name``, and an ``outer``
optax optimizer moves the anchor (the last global parameters) by the reduced pseudo-gradient::

    theta_i <- InnerOpt(theta_i, grad_i)                            every step
    Delta   =  Reduce_i(theta_anchor - theta_i)                      every H steps
    theta_anchor <- OuterOpt(theta_anchor, Delta);  theta_i <- theta_anchor

Written as optax transforms for one worker: ``update`` returns the inner update between syncs and
``new_anchor - params`` at a sync (DiLoCo's convention in torchft), so the caller's ``optax.apply_updates``
lands every worker on the new global parameters. Run them with :func:`decentral.axis.run` (vmap, shard_map or
pmap); ``axis_name=None`` runs a single worker (no collectives).

- :func:`diloco` (arXiv 2311.08105): the mean of the pseudo-gradients (optionally compressed by any
  :mod:`decentral.compression` compressor and averaged in float32); outer Nesterov SGD (0.7, 0.9).
- :func:`streaming_diloco` (arXiv 2501.18512): P fragments synced in turn, one every H/P steps; the outer
  gradient of a fragment is all-reduced ``overlap`` (tau) steps before it is applied, local and global values are
  mixed with ``mixing`` (alpha), and outer gradients travel in FP4 E3M0 (or int8) and are averaged in float32.
- :func:`sparseloco` (arXiv 2508.15706): the pseudo-gradient goes into an error-feedback buffer decayed by
  beta, whose chunk-wise top-k entries are sent with 2-bit values; the outer step is plain SGD on their mean.
- :func:`local_sgd` is the shared core with a pluggable :class:`Reducer` (EDiT's penalty lives in
  :mod:`decentral.edit`).

Every state carries a :class:`decentral.ledger.CommStats` (``comm``): the exact bytes this worker sent in the
latest step, in the encoding used (:func:`sync_bytes`, :func:`streaming_step_bytes`).

>>> import jax, jax.numpy as jnp, optax
>>> from decentral import axis
>>> tx = diloco(optax.sgd(0.1), sync_every=2, axis_name='workers')
>>> def two_steps(p, g):
...   s = tx.init(p)
...   for _ in range(2):
...     u, s = tx.update(g, s, p)
...     p = optax.apply_updates(p, u)
...   return p
>>> p0 = jnp.zeros((4, 1))
>>> g = jnp.arange(4.0)[:, None]  # worker i's gradient is i
>>> p = axis.run(two_steps, 4)(p0, g)  # Delta = 0.2 mean(g) = 0.3; Nesterov: -0.7 (0.3 + 0.9 * 0.3)
>>> [round(float(v), 4) for v in p[:, 0]]
[-0.399, -0.399, -0.399, -0.399]
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from decentral import compression as comp
from decentral import ledger

PyTree = Any


# ---------------------------------------------------------------------------------------------- helpers


def _check_positive_int(value, name):
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
    raise ValueError(f'{name} must be a positive integer, got {value!r}')
  return int(value)


def _check_unit_interval(value, name):
  if not (math.isfinite(value) and 0 <= value <= 1):
    raise ValueError(f'{name} must be in [0, 1], got {value!r}')
  return float(value)


def accumulation_dtype(x):
  """The dtype outer gradients are accumulated in: float32, or the parameter's dtype if wider (float64)."""
  return jnp.promote_types(jnp.result_type(x), jnp.float32)


def _wide(x):
  return jnp.asarray(x).astype(accumulation_dtype(x))


def _f32(tree):
  return jax.tree.map(_wide, tree)


def _like(tree, ref):
  return jax.tree.map(lambda x, r: jnp.asarray(x).astype(r.dtype), tree, ref)


def _pseudo_gradient(anchor, local):
  """Delta_i = anchor - theta_i, in float32 (the outer gradient is accumulated in float32, or wider)."""
  return jax.tree.map(lambda a, x: _wide(a) - _wide(x), anchor, local)


def _pmean(tree, axis_name):
  return tree if axis_name is None else lax.pmean(tree, axis_name)


def match_vma(tree: PyTree, axis_name: str | None) -> PyTree:
  """Casts every leaf of ``tree`` to varying over ``axis_name`` inside ``shard_map`` (and pmap); else no-op.

  The branches of a ``lax.cond`` must agree on which manual axes their outputs vary over: a branch that
  all-reduces returns invariant values, the other returns per-worker state. Casting both branches' outputs to
  varying makes them agree; casting the whole optimizer state in ``init`` and ``update`` keeps its type fixed,
  so it can be the carry of a ``lax.scan``. Outside a manual axis (vmap, one worker) this is the identity.
  """
  manual = getattr(jax.sharding.get_abstract_mesh(), 'manual_axes', ())
  if axis_name is None or axis_name not in manual:
    return tree

  def cast(x):
    x = jnp.asarray(x)
    return x if axis_name in _varying_axes(x) else lax.pcast(x, axis_name, to='varying')
  return jax.tree.map(cast, tree)


def _varying_axes(x) -> frozenset:
  aval = jax.typeof(x)
  mat = getattr(aval, 'mat', None)  # jax >= 0.9: the manual axis type; earlier: aval.vma
  return frozenset(getattr(mat, 'varying', None) or getattr(aval, 'vma', None) or ())


def _check_same_tree(tree, ref, what):
  if jax.tree.structure(tree) != jax.tree.structure(ref):
    raise ValueError(f'{what} has tree structure {jax.tree.structure(tree)}, expected that of the '
                     f'parameters the state was initialised with, {jax.tree.structure(ref)}')
  for a, b in zip(jax.tree.leaves(tree), jax.tree.leaves(ref)):
    if np.shape(a) != np.shape(b):
      raise ValueError(f'{what} has a leaf of shape {np.shape(a)} where the parameters have {np.shape(b)}')


def default_outer(learning_rate: float = 0.7, momentum: float = 0.9) -> optax.GradientTransformation:
  """DiLoCo's outer optimizer: SGD with Nesterov momentum, lr 0.7, momentum 0.9 (torch.optim.SGD semantics).

  optax's ``sgd(nesterov=True)`` computes m <- g + mu m, update = -lr (g + mu m), which is PyTorch's
  Nesterov SGD with dampening 0 exactly.
  """
  return optax.sgd(learning_rate, momentum=momentum, nesterov=True)


# ---------------------------------------------------------------------------------------------- reducers


class Reducer(NamedTuple):
  """How the workers turn their pseudo-gradients into one outer gradient.

  ``init(params) -> state``; ``apply(delta, state, key, axis_name) -> (outer_grad, state, bytes_sent, keep)``
  runs per worker on its float32 pseudo-gradient and returns the same reduced outer gradient on every worker;
  ``keep`` is None, or one boolean per leaf saying whether the outer step applies to that leaf (EDiT skips
  a layer whose every pseudo-gradient was rejected; needs ``local_sgd(..., leafwise_outer=True)``).
  ``nbytes(params) -> int`` is the exact size of what one worker sends per sync (static, from the shapes).
  """

  init: Callable[[PyTree], PyTree]
  apply: Callable[..., tuple[PyTree, PyTree, Any]]
  nbytes: Callable[[PyTree], int]


def mean_reducer(compressor: comp.Compressor | None = None) -> Reducer:
  """The mean of the (optionally compressed) pseudo-gradients, accumulated in float32.

  Each worker sends its Delta_i encoded by ``compressor`` (dense float32 when None); every worker decodes all
  messages and averages them in float32, so the result is the same everywhere.
  """
  c = compressor or comp.identity()

  def apply(delta, state, key, axis_name):
    if compressor is not None:
      delta = comp.decompress_tree(c, comp.compress_tree(c, delta, key), delta)
      delta = _f32(delta)
    return _pmean(delta, axis_name), state, comp.tree_nbytes(c, _f32(delta)), None

  return Reducer(lambda params: (), apply, lambda params: comp.tree_nbytes(c, _f32(params)))


# ---------------------------------------------------------------------------------------------- local SGD core


class LocalSGDState(NamedTuple):
  """Per-worker state of :func:`local_sgd` (and :func:`diloco`, :func:`sparseloco`, :func:`decentral.edit`)."""

  count: jax.Array          # inner steps taken (int32)
  inner_state: optax.OptState
  anchor: PyTree            # the global parameters at the last sync
  outer_state: optax.OptState
  reducer_state: PyTree     # error-feedback buffers, anomaly detectors, ... (() for the plain mean)
  key: jax.Array            # for randomised compressors: fold_in(fold_in(key, round), worker)
  comm: ledger.CommStats


def _worker_key(key, count, axis_name):
  key = jax.random.fold_in(key, count)
  return key if axis_name is None else jax.random.fold_in(key, lax.axis_index(axis_name))


def local_sgd(inner: optax.GradientTransformation, outer: optax.GradientTransformation, *, sync_every: int,
              reducer: Reducer, axis_name: str | None = 'workers', seed: int = 0, leafwise_outer: bool = False
              ) -> optax.GradientTransformation:
  """Local SGD with an outer optimizer on the reduced pseudo-gradient, for one worker on ``axis_name``.

  Every step: u = InnerOpt(g). Every ``sync_every`` = H steps (after steps H, 2H, ...):
  Delta_i = anchor - (params + u); Delta = reducer(Delta_1..Delta_n); anchor <- anchor + OuterOpt(Delta);
  the returned update is then anchor - params, so every worker lands on the new anchor.

  Args:
    inner: the optimizer each worker runs every step (its state stays local, never reset).
    outer: the optimizer applied to the reduced pseudo-gradient, treated as a gradient of the anchor.
    sync_every: H >= 1.
    reducer: the :class:`Reducer` (the mean for DiLoCo).
    axis_name: the worker axis; None for a single worker.
    seed: seeds the keys of randomised compressors.
    leafwise_outer: keep one outer state per leaf (PyTorch's per-parameter optimizer state), so the outer step
      can be skipped leaf by leaf (the reducer's ``keep``).

  Returns:
    A ``GradientTransformation`` whose state is a :class:`LocalSGDState`. All workers must start from the
    same parameters (the anchor is initialised from them).
  """
  h = _check_positive_int(sync_every, 'sync_every')

  def outer_init(params):
    return tuple(outer.init(x) for x in jax.tree.leaves(params)) if leafwise_outer else outer.init(params)

  def outer_step(grad, outer_state, anchor, keep):
    if not leafwise_outer:
      if keep is not None:
        raise ValueError('this reducer skips leaves; build local_sgd with leafwise_outer=True')
      outer_u, outer_state = outer.update(grad, outer_state, anchor)
      return optax.apply_updates(anchor, outer_u), outer_state
    leaves, treedef = jax.tree.flatten(anchor)
    keep = [True] * len(leaves) if keep is None else keep
    new_leaves, new_states = [], []
    for a, g, s, k in zip(leaves, treedef.flatten_up_to(grad), outer_state, keep):
      u, s_new = outer.update(g, s, a)
      a_new = optax.apply_updates(a, u)
      new_leaves.append(jnp.where(k, a_new, a))
      new_states.append(jax.tree.map(lambda x, y: jnp.where(k, x, y), s_new, s))
    return jax.tree.unflatten(treedef, new_leaves), tuple(new_states)

  def init_fn(params):
    state = LocalSGDState(
        count=jnp.zeros([], jnp.int32), inner_state=inner.init(params),
        anchor=jax.tree.map(jnp.asarray, params), outer_state=outer_init(params),
        reducer_state=reducer.init(params), key=jax.random.key(seed), comm=ledger.init_stats())
    return match_vma(state, axis_name)  # every leaf per worker, so the state can be a scan carry

  def update_fn(grads, state, params=None):
    if params is None:
      raise ValueError('local SGD needs the current params: call update(grads, state, params)')
    _check_same_tree(grads, state.anchor, 'grads')
    _check_same_tree(params, state.anchor, 'params')
    inner_u, inner_state = inner.update(grads, state.inner_state, params)
    count = state.count + 1
    local = optax.apply_updates(params, inner_u)

    def sync(_):
      delta = _pseudo_gradient(state.anchor, local)
      key = _worker_key(state.key, count, axis_name)
      outer_grad, red_state, sent, keep = reducer.apply(delta, state.reducer_state, key, axis_name)
      anchor, outer_state = outer_step(_like(outer_grad, state.anchor), state.outer_state, state.anchor, keep)
      updates = jax.tree.map(lambda a, p: (_wide(a) - _wide(p)).astype(p.dtype), anchor, params)
      out = (updates, anchor, outer_state, red_state, jnp.asarray(sent, jnp.int32))
      return match_vma(out, axis_name)

    def no_sync(_):
      out = (inner_u, state.anchor, state.outer_state, state.reducer_state, jnp.zeros([], jnp.int32))
      return match_vma(out, axis_name)

    is_sync = count % h == 0
    updates, anchor, outer_state, red_state, sent = lax.cond(is_sync, sync, no_sync, None)
    comm = ledger.step_stats(state.comm, sent, is_sync)
    updates = jax.tree.map(lambda u, p: u.astype(p.dtype), updates, params)
    new_state = LocalSGDState(count, inner_state, anchor, outer_state, red_state, state.key, comm)
    return updates, match_vma(new_state, axis_name)

  return optax.GradientTransformation(init_fn, update_fn)


def diloco(inner: optax.GradientTransformation, outer: optax.GradientTransformation | None = None, *,
           sync_every: int, axis_name: str | None = 'workers', compressor: comp.Compressor | None = None,
           seed: int = 0) -> optax.GradientTransformation:
  """DiLoCo: H inner steps of any optax optimizer, then outer Nesterov SGD on the mean pseudo-gradient.

  theta_i <- InnerOpt(theta_i) for H steps; Delta = (1/n) sum_i (theta_anchor - theta_i);
  theta_anchor <- OuterOpt(theta_anchor, Delta) (Nesterov SGD, lr 0.7, momentum 0.9 by default); every worker
  restarts from theta_anchor. The inner optimizer's state is kept across rounds (as in the paper and torchft).
  With H = 1, outer SGD at learning rate 1 and a linear inner optimizer (SGD, momentum) this is synchronous
  data-parallel training exactly. Each worker sends one (encoded) pseudo-gradient per H steps, so the bytes
  are those of data-parallel training divided by H.

  Args:
    inner: the inner optimizer (AdamW in the paper).
    outer: the outer optimizer; :func:`default_outer` when None.
    sync_every: H, the number of inner steps between syncs (500 in the paper).
    axis_name: the worker axis (None: one worker).
    compressor: optional :mod:`decentral.compression` compressor of the pseudo-gradients (e.g. ``int8()``,
      ``fp4_e3m0()``); decoded and averaged in float32.
    seed: seeds randomised compressors.

  Returns:
    A ``GradientTransformation`` (state :class:`LocalSGDState`).

  References: Douillard et al., DiLoCo, arXiv 2311.08105; the update convention (``new_anchor - params`` at a
  sync) and the step at which a sync happens (after the H-th inner step) follow torchft's ``DiLoCo``.
  """
  return local_sgd(inner, outer or default_outer(), sync_every=sync_every, reducer=mean_reducer(compressor),
                   axis_name=axis_name, seed=seed)


def sync_bytes(params: PyTree, compressor: comp.Compressor | None = None) -> int:
  """Bytes one worker sends per DiLoCo sync: its pseudo-gradient, float32 dense or encoded by ``compressor``."""
  return mean_reducer(compressor).nbytes(params)


# ---------------------------------------------------------------------------------------------- SparseLoCo


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
                          ) -> comp.Compressor:
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
  chunk = _check_positive_int(chunk, 'chunk')
  k = _check_positive_int(k, 'k')
  bins = _check_positive_int(bins, 'bins')
  if bins < 2 or bins & (bins - 1):
    raise ValueError(f'bins must be a power of two >= 2, got {bins}')
  if not (math.isfinite(range_sigmas) and range_sigmas > 0):
    raise ValueError(f'range_sigmas must be positive and finite, got {range_sigmas!r}')
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
    return (comp.pack_bits(np.asarray(p['indices']).reshape(-1), index_bits(t))
            + comp.pack_bits(np.asarray(p['codes']).reshape(-1), code_bits)
            + np.float32(np.asarray(p['shift'])).tobytes() + np.asarray(p['lookup'], np.float32).tobytes())

  def decode(data, shape, dtype):
    t = _tiling(tuple(shape), chunk)
    kept, pos = t.tiles * kk(t), 0
    n_idx = (kept * index_bits(t) + 7) // 8
    idx = comp.unpack_bits(data[:n_idx], index_bits(t), kept).astype(np.int32).reshape(t.tiles, kk(t))
    pos = n_idx + (kept * code_bits + 7) // 8
    codes = comp.unpack_bits(data[n_idx:pos], code_bits, kept).astype(np.uint8)
    shift = np.frombuffer(data[pos:pos + 4], np.float32)[0]
    lookup = np.frombuffer(data[pos + 4:pos + 4 + 4 * bins], np.float32).copy()
    if len(data) != pos + 4 + 4 * bins:
      raise ValueError(f'sparseloco payload has {len(data)} bytes, expected {pos + 4 + 4 * bins}')
    return {'indices': idx, 'codes': codes, 'shift': shift, 'lookup': lookup}

  return comp.Compressor(f'sparseloco_top{k}_{code_bits}bit', compress, decompress, nbytes, encode, decode)


def error_feedback_reducer(compressor: comp.Compressor, decay: float) -> Reducer:
  """SparseLoCo's reduction: e <- beta e + Delta_i; send C(e); e <- e - C(e); return mean_i C(e_i).

  The error-feedback buffer e (float32, per worker) is the reducer state; what is subtracted is exactly what
  was transmitted (the decoded, quantised top-k), so e_new + C(e) = beta e_old + Delta_i at every sync.
  """

  def apply(delta, ef, key, axis_name):
    acc = jax.tree.map(lambda e, d: decay * e + d, ef, delta)
    sent_tree = comp.decompress_tree(compressor, comp.compress_tree(compressor, acc, key), acc)
    ef = jax.tree.map(lambda a, s: a - s, acc, sent_tree)
    return _pmean(sent_tree, axis_name), ef, comp.tree_nbytes(compressor, acc), None

  return Reducer(lambda params: jax.tree.map(lambda x: jnp.zeros(jnp.shape(x), accumulation_dtype(x)), params), apply,
                 lambda params: comp.tree_nbytes(compressor, _f32(params)))


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
    A ``GradientTransformation`` (state :class:`LocalSGDState`; ``reducer_state`` is the buffer e).

  Reference: Sarfi et al., Communication Efficient LLM Pre-training with SparseLoCo, arXiv 2508.15706; defaults
  and the compressor from the authors' templar code (``hparams.json``, ``tplr/compress.py``). templar's
  validator also clips each peer's decoded update by norm before averaging; not done here (the paper's mean).
  """
  _check_unit_interval(decay, 'decay')
  if not (math.isfinite(learning_rate) and learning_rate > 0):
    raise ValueError(f'learning_rate must be positive and finite, got {learning_rate!r}')
  c = sparseloco_compressor(chunk=chunk, k=k, bins=bins, range_sigmas=range_sigmas)
  return local_sgd(inner, optax.sgd(learning_rate), sync_every=sync_every,
                   reducer=error_feedback_reducer(c, decay), axis_name=axis_name)


# ---------------------------------------------------------------------------------------------- Streaming DiLoCo


def strided_fragments(params: PyTree, num_fragments: int) -> PyTree:
  """Fragment ids for the leaves of ``params``: leaf j (flatten order) -> j mod P (the paper's strided pattern
  with one leaf standing for one layer)."""
  p = _check_positive_int(num_fragments, 'num_fragments')
  leaves, treedef = jax.tree.flatten(params)
  return jax.tree.unflatten(treedef, [j % p for j in range(len(leaves))])


def balanced_fragments(params: PyTree, num_fragments: int) -> PyTree:
  """Fragment ids that balance sizes: leaves, largest first, go to the fragment with the fewest entries so far.

  Use it when the leaves are not P equal layers (a small model), so the peak bandwidth is close to 1/P.
  """
  p = _check_positive_int(num_fragments, 'num_fragments')
  leaves, treedef = jax.tree.flatten(params)
  sizes = [int(np.prod(np.shape(x), dtype=np.int64)) for x in leaves]
  load, ids = [0] * p, [0] * len(leaves)
  for j in sorted(range(len(leaves)), key=lambda j: (-sizes[j], j)):
    f = min(range(p), key=lambda q: (load[q], q))
    ids[j], load[f] = f, load[f] + sizes[j]
  return jax.tree.unflatten(treedef, ids)


def _fragment_ids(params, fragments, num_fragments):
  leaves, treedef = jax.tree.flatten(params)
  if fragments is None:
    fragments = strided_fragments(params, num_fragments)
  elif callable(fragments):
    fragments = fragments(params, num_fragments)
  ids = treedef.flatten_up_to(fragments)
  ids = [int(i) for i in ids]
  if any(i < 0 or i >= num_fragments for i in ids):
    raise ValueError(f'fragment ids must lie in 0..{num_fragments - 1}, got {sorted(set(ids))}')
  empty = sorted(set(range(num_fragments)) - set(ids))
  if empty:
    raise ValueError(f'fragments {empty} have no parameters; use fewer fragments than the {len(leaves)} leaves')
  return ids


class StreamingDiLoCoState(NamedTuple):
  """Per-worker state of :func:`streaming_diloco`."""

  count: jax.Array
  inner_state: optax.OptState
  anchor: PyTree               # global parameters, each fragment as of its last sync
  outer_states: tuple          # one outer optimizer state per fragment (over its leaves)
  pending: PyTree              # the reduced outer gradient in flight (float32; meaningful on one fragment)
  key: jax.Array
  comm: ledger.CommStats


def _outer_compressor(quantize):
  if quantize is None or isinstance(quantize, comp.Compressor):
    return quantize
  table = {'e3m0': comp.fp4_e3m0, 'fp4_e3m0': comp.fp4_e3m0, 'int8': comp.int8, 'none': None}
  if quantize not in table:
    raise ValueError(f"quantize must be one of {sorted(table)}, None or a Compressor, got {quantize!r}")
  return table[quantize]() if table[quantize] else None


def streaming_diloco(inner: optax.GradientTransformation, outer: optax.GradientTransformation | None = None, *,
                     sync_every: int, num_fragments: int = 1, overlap: int = 0, mixing: float = 0.0,
                     quantize: str | comp.Compressor | None = 'e3m0', fragments: Any = None,
                     axis_name: str | None = 'workers', seed: int = 0) -> optax.GradientTransformation:
  """Streaming DiLoCo: fragments synced in turn, communication overlapped with tau steps, FP4 outer gradients.

  The leaves are split into P fragments. Every h = H/P steps one fragment is synced, round robin, so fragment p
  syncs after steps (p+1)h, (p+1)h + H, ... (every H steps, offset by h). For the sync at step t:

  - at step t - tau (after its inner update) each worker sends its fragment's outer gradient
    Delta_{i,p} = anchor_p - theta_{i,p}, quantised (FP4 E3M0 by default), and the mean of the decoded
    messages is accumulated in float32 while training continues;
  - at step t: anchor_p <- OuterOpt_p(anchor_p, Delta_p) and theta_{i,p} <- alpha theta_{i,p} + (1 - alpha)
    anchor_p, where theta_{i,p} includes the tau inner steps taken meanwhile.

  With one fragment, tau = 0 and alpha = 0 this is :func:`diloco`. Each fragment has its own
  outer optimizer state. The peak bytes per step are those of the largest fragment, encoded.

  Args:
    inner: the inner optimizer.
    outer: the outer optimizer of every fragment; :func:`default_outer` when None.
    sync_every: H, steps between two syncs of the same fragment; a multiple of ``num_fragments``.
    num_fragments: P >= 1.
    overlap: tau, steps between sending a fragment's outer gradient and applying it; 0 <= tau < H/P.
    mixing: alpha in [0, 1], the weight of the local parameters when merging (0: take the global ones).
    quantize: 'e3m0' (FP4, 1 sign + 3 exponent bits, absmax scale), 'int8', None (float32) or any
      :mod:`decentral.compression` compressor.
    fragments: a pytree of fragment ids like the params, a function ``(params, P) -> ids`` (e.g.
      :func:`balanced_fragments`), or None for :func:`strided_fragments`.
    axis_name: the worker axis (None: one worker).
    seed: seeds randomised compressors.

  Returns:
    A ``GradientTransformation`` (state :class:`StreamingDiLoCoState`).

  Reference: Douillard et al., arXiv 2501.18512. Schedule, tau and alpha as torchft's ``DiLoCo`` computes
  them (fragment p first synced at step (p+1)H/P; ``fragment_sync_delay`` = tau; the merge is
  ``global.lerp(local, alpha)``), checked against torchft's regression fixtures in the tests.
  """
  h_total = _check_positive_int(sync_every, 'sync_every')
  p_count = _check_positive_int(num_fragments, 'num_fragments')
  if h_total % p_count:
    raise ValueError(f'sync_every={h_total} must be a multiple of num_fragments={p_count}')
  h = h_total // p_count
  if isinstance(overlap, bool) or not isinstance(overlap, (int, np.integer)) or not 0 <= overlap < h:
    raise ValueError(f'overlap (tau) must be an integer in [0, sync_every/num_fragments = {h}), got {overlap!r}')
  tau = int(overlap)
  alpha = _check_unit_interval(mixing, 'mixing')
  outer = outer or default_outer()
  compressor = _outer_compressor(quantize)
  reducer = mean_reducer(compressor)

  def layout(params):
    ids = _fragment_ids(params, fragments, p_count)
    return ids, [[j for j, f in enumerate(ids) if f == q] for q in range(p_count)]

  def init_fn(params):
    _, groups = layout(params)
    leaves = jax.tree.leaves(params)
    state = StreamingDiLoCoState(
        count=jnp.zeros([], jnp.int32), inner_state=inner.init(params),
        anchor=jax.tree.map(jnp.asarray, params),
        outer_states=tuple(outer.init([leaves[j] for j in g]) for g in groups),
        pending=jax.tree.map(lambda x: jnp.zeros(jnp.shape(x), accumulation_dtype(x)), params),
        key=jax.random.key(seed), comm=ledger.init_stats())
    return match_vma(state, axis_name)

  def update_fn(grads, state, params=None):
    if params is None:
      raise ValueError('streaming_diloco needs the current params: call update(grads, state, params)')
    _check_same_tree(grads, state.anchor, 'grads')
    _check_same_tree(params, state.anchor, 'params')
    _, groups = layout(params)
    treedef = jax.tree.structure(params)
    inner_u, inner_state = inner.update(grads, state.inner_state, params)
    count = state.count + 1
    local = jax.tree.leaves(optax.apply_updates(params, inner_u))
    anchor = jax.tree.leaves(state.anchor)
    pending = jax.tree.leaves(state.pending)
    key = _worker_key(state.key, count, axis_name)

    def prepare(q):
      def branch(pending):
        g = groups[q]
        delta = [_wide(anchor[j]) - _wide(local[j]) for j in g]
        reduced, _, sent, _ = reducer.apply(delta, (), key, axis_name)
        new = list(pending)
        for j, r in zip(g, reduced):
          new[j] = r
        return match_vma((new, jnp.asarray(sent, jnp.int32)), axis_name)
      return branch

    def no_prepare(pending):
      return match_vma((list(pending), jnp.zeros([], jnp.int32)), axis_name)

    # The fragment whose sync is tau steps ahead sends its outer gradient now.
    is_prep = (count + tau) % h == 0
    prep_q = ((count + tau) // h - 1) % p_count
    pending, sent = lax.switch(jnp.where(is_prep, prep_q, p_count),
                               [prepare(q) for q in range(p_count)] + [no_prepare], pending)

    leaf_params = jax.tree.leaves(params)
    leaf_inner = jax.tree.leaves(inner_u)

    def apply(q):
      def branch(operand):
        anchor, outer_states = operand
        g = groups[q]
        outer_grad = [pending[j].astype(anchor[j].dtype) for j in g]
        frag_anchor = [anchor[j] for j in g]
        outer_u, new_state = outer.update(outer_grad, outer_states[q], frag_anchor)
        frag_anchor = optax.apply_updates(frag_anchor, outer_u)
        new_anchor, updates = list(anchor), list(leaf_inner)
        for j, a in zip(g, frag_anchor):
          new_anchor[j] = a
          merged = (1.0 - alpha) * _wide(a) + alpha * _wide(local[j])
          updates[j] = (merged - _wide(leaf_params[j])).astype(leaf_params[j].dtype)
        states = tuple(new_state if r == q else s for r, s in enumerate(outer_states))
        return match_vma((updates, new_anchor, states), axis_name)
      return branch

    def no_apply(operand):
      anchor, outer_states = operand
      return match_vma((list(leaf_inner), list(anchor), tuple(outer_states)), axis_name)

    is_sync = count % h == 0
    sync_q = (count // h - 1) % p_count
    updates, anchor, outer_states = lax.switch(jnp.where(is_sync, sync_q, p_count),
                                               [apply(q) for q in range(p_count)] + [no_apply],
                                               (anchor, state.outer_states))
    comm = ledger.step_stats(state.comm, sent, is_prep)
    updates = [u.astype(p.dtype) for u, p in zip(updates, leaf_params)]
    new_state = StreamingDiLoCoState(count, inner_state, jax.tree.unflatten(treedef, anchor), outer_states,
                                     jax.tree.unflatten(treedef, pending), state.key, comm)
    return jax.tree.unflatten(treedef, updates), match_vma(new_state, axis_name)

  return optax.GradientTransformation(init_fn, update_fn)


def streaming_step_bytes(params: PyTree, *, sync_every: int, num_fragments: int = 1, overlap: int = 0,
                         quantize: str | comp.Compressor | None = 'e3m0', fragments: Any = None) -> np.ndarray:
  """Bytes one worker sends at each step of one period of H steps of :func:`streaming_diloco` (exact).

  Entry s (0-based) is the payload sent after step s + 1 of a period (a period is steady from the first one on).
  Its maximum is the peak bandwidth per step; its sum equals DiLoCo's bytes per sync in the same encoding.
  """
  h = sync_every // num_fragments
  ids = _fragment_ids(params, fragments, num_fragments)
  leaves = [jnp.zeros(np.shape(x), accumulation_dtype(x)) for x in jax.tree.leaves(params)]
  reducer = mean_reducer(_outer_compressor(quantize))
  out = np.zeros(sync_every, np.int64)
  for t in range(1, sync_every + 1):
    if (t + overlap) % h == 0:
      q = ((t + overlap) // h - 1) % num_fragments
      out[t - 1] = reducer.nbytes([x for x, f in zip(leaves, ids) if f == q])
  return out
