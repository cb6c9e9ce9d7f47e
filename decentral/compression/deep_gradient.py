"""Deep Gradient Compression (Lin et al., 1712.01887) as a worker-axis optax transform.

Per worker, for every compressed leaf (a "dense layer": ``ndim >= 2``, as the official code's
``param.dim() > 1``; biases and other leaves are all-reduced dense)::

    g  <- clip(g, clip_norm / sqrt(N))          local gradient clipping (optional)
    u  <- m u + g                               momentum correction: momentum accumulated locally ...
    v  <- v + u                                 ... into the velocity that is sparsified
    thr from a strided sample of |v|            top (density x samples) of a ~1% sample
    M  =  |v| >= thr                            with DGC's adaptation, exact top-k if > 1.3 k pass
    send (v[M], indices of M)                   at most k = ceil(density d) entries
    v  <- v * !M;   u <- u * !M                 momentum factor masking (the second product)

and every worker applies ``direction = (1/N) sum_j scatter(values_j, indices_j)``: plain SGD on it, since the
momentum is already in v (chain with ``optax.scale_by_learning_rate`` / ``optax.sgd(lr)`` without momentum).
Dense leaves follow the official code's dense path: the averaged gradient goes through momentum SGD
(``u <- m u + mean_j g_j``, direction u). With ``nesterov=True``, u <- m (u + g) and v <- v + u + g (the code's
``DGCSGDMemory``).

Ablations (the paper's four techniques): ``momentum_correction=False`` sparsifies the accumulated gradient
(v <- v + g) and applies momentum to the aggregated sparse update instead (the paper's Eq. 7 baseline);
``momentum_masking=False`` leaves u unmasked; ``clip_norm=None``; ``warmup_epochs=0``.

Warm-up of the sparsity, two conventions (they disagree; see ``notes/decentral.md``):

- ``warmup='paper'`` (default): density 0.25^(e+1) in epoch e < warmup_epochs, never below ``density``:
  75%, 93.75%, 98.4375%, 99.6%, 99.9% sparsity, the paper's schedule and the README's
  ``[0.25, 0.063, 0.015, 0.004, 0.001]``;
- ``warmup='code'``: the official ``DGCCompressor`` default, density^((e+1)/(E+1)) for E = warmup_epochs
  (0.316, 0.1, 0.0316, 0.01, 0.00316 for E = 5 and density 0.001), which is *not* the README's list.

Threshold: as the official code, a strided sample (random start) of ~``sample_ratio`` of the entries (at least
2/density of them), the threshold is the smallest of its top ceil(density x samples) magnitudes; if more than
1.3 k entries pass, the exact top-k is taken; if fewer than 0.8 k, the threshold is lowered by 0.8 (at most 10
times); at most k entries are sent (the first k in index order). Leaves too small to sample are thresholded
exactly.

Bytes per round (in ``state.comm.sent``): dense leaves size x itemsize; compressed leaves count x (itemsize +
index bytes), index bytes from ``index_dtype`` ('auto' = the smallest unsigned integer holding d, or 'int32' /
'int64' as the official code's options).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from decentral import axis, checks, ledger
from decentral.compression.wire import index_dtype as wire_index_dtype
from optim import checks as optim_checks

PyTree = Any

_UPPER, _LOWER, _ADAPT_ITERS = 1.3, 0.8, 10  # the official compress_upper/lower_bound, max_adaptation_iters


class DGCState(NamedTuple):
  momentum: PyTree  # u: local momentum (compressed leaves) or the momentum of the averaged gradient
  velocity: PyTree  # v: accumulated, not yet sent (zeros for dense leaves)
  count: jax.Array
  key: jax.Array
  comm: ledger.CommStats


def warmup_densities(density: float, warmup_epochs: int, warmup: str = 'paper') -> list[float]:
  """Densities of epochs 0 .. warmup_epochs - 1 followed by the target: the sparsity warm-up schedule.

  >>> [round(r, 4) for r in warmup_densities(0.001, 5, 'paper')]
  [0.25, 0.0625, 0.0156, 0.0039, 0.001, 0.001]
  >>> [round(r, 4) for r in warmup_densities(0.001, 5, 'code')]
  [0.3162, 0.1, 0.0316, 0.01, 0.0032, 0.001]
  """
  if warmup not in ('paper', 'code'):
    raise ValueError(f"warmup must be 'paper' or 'code', got {warmup!r}")
  if warmup == 'paper':
    stages = [0.25 ** (e + 1) for e in range(warmup_epochs)]
  else:
    coeff = density ** (1.0 / (warmup_epochs + 1))
    stages = [coeff ** (e + 1) for e in range(warmup_epochs)]
  return [max(r, density) for r in stages] + [density]


class _Plan(NamedTuple):
  """Static per-leaf plan: sample stride and size, and (k, k_sample) per warm-up stage."""

  size: int
  stride: int
  num_samples: int
  k: tuple
  k_samples: tuple

  @property
  def k_max(self):
    return max(self.k)


def _plan(size, density, densities, sample_ratio):
  """The official code's sample plan (``DGCCompressor.initialize``), made for the target density."""
  pct = int(math.ceil(size * sample_ratio))
  cpr = int(math.ceil(2 / density))
  if size <= cpr:
    stride, num = 1, size
  else:
    stride = int(math.ceil(size / max(pct, cpr) / 32)) * 32 + 1
    num = size // stride
    while num < max(pct, cpr) and stride > 1:
      stride = max(1, stride - 8)
      num = size // stride
  ks = tuple(int(math.ceil(size * r)) for r in densities)
  kss = tuple(int(math.ceil(num * r)) for r in densities)
  return _Plan(size, stride, num, ks, kss)


def _kth_largest(imp, k):
  """The k-th largest of the non-negative float32 ``imp``: bisection on the float bits (monotone for x >= 0).

  32 passes of a count over the entries, far cheaper than ``lax.top_k`` with a large k on CPU.
  """
  bits = lax.bitcast_convert_type(imp, jnp.int32)

  def body(_, lohi):
    lo, hi = lohi
    mid = lo + (hi - lo + 1) // 2
    ok = jnp.sum(bits >= mid) >= k
    return jnp.where(ok, mid, lo), jnp.where(ok, hi, mid - 1)

  lo, _ = lax.fori_loop(0, 32, body, (jnp.zeros_like(bits[0]), jnp.max(bits)))
  return lax.bitcast_convert_type(lo, jnp.float32)


def _select(v, plan, stage, key):
  """Which entries of the flat velocity ``v`` DGC sends: (mask over the entries, number sent <= k)."""
  imp = jnp.abs(v.astype(jnp.float32))
  k = jnp.asarray(plan.k, jnp.int32)[stage]
  ks = jnp.asarray(plan.k_samples, jnp.int32)[stage]
  if plan.stride == 1:
    samples = imp
  else:
    start = jax.random.randint(key, (), 0, plan.stride)
    samples = imp[start + plan.stride * jnp.arange(plan.num_samples)]
  thr = lax.top_k(samples, max(plan.k_samples))[0][ks - 1]
  false = thr * 0.0 > 1.0  # False with thr's worker-axis type (a literal False would not be varying)
  exact = false
  if plan.stride > 1:  # the code adapts only when the threshold came from a sample

    def adapt(_, carry):
      thr, done, exact = carry
      cnt = jnp.sum(imp >= thr)
      too_many = cnt > k
      now_exact = too_many & (cnt > _UPPER * k)
      lower = ~too_many & (cnt < _LOWER * k)
      thr = jnp.where(done | ~lower, thr, thr * _LOWER)
      exact = exact | (~done & now_exact)
      done = done | ~lower
      return thr, done, exact

    thr, _, exact = lax.fori_loop(0, _ADAPT_ITERS, adapt, (thr, false, exact))
    # Exact top-k when more than 1.3 k entries pass: the entries >= the k-th largest magnitude.
    thr = jnp.where(exact, _kth_largest(imp, k), thr)
  passing = imp >= thr
  # At most k are sent, the first ones in index order (the code's indices[:num_selects]).
  keep = passing & (jnp.cumsum(passing) <= k)
  return keep, jnp.minimum(jnp.sum(passing), k)


def _slots(keep, k_max):
  """The kept entries' indices in k_max slots (index order) and the slots' validity: the sparse payload."""
  pos = jnp.cumsum(keep) - 1
  slots = jnp.zeros(k_max, jnp.int32).at[jnp.where(keep, pos, k_max)].set(
      jnp.arange(keep.shape[0], dtype=jnp.int32), mode='drop')
  return slots, jnp.arange(k_max) < jnp.sum(keep)


def _index_bytes(index_dtype, size):
  if index_dtype == 'auto':
    return wire_index_dtype(size).itemsize
  return {'int32': 4, 'int64': 8}[index_dtype]


def scale_by_dgc(density: float = 0.001, momentum: float = 0.9, *, axis_name: str, nesterov: bool = False,
                 clip_norm: float | None = None, momentum_correction: bool = True,
                 momentum_masking: bool = True, warmup_epochs: int = 0, steps_per_epoch: int = 1,
                 warmup: str = 'paper', sample_ratio: float = 0.01, min_ndim: int = 2,
                 index_dtype: str = 'auto', mode: str = 'gather', seed: int = 0
                 ) -> optax.GradientTransformation:
  """Deep Gradient Compression: the sparse, momentum-corrected direction averaged over ``axis_name``.

  See the module docstring for the update. Chain with ``optax.scale_by_learning_rate`` (plain SGD; the
  momentum is inside), or use :func:`dgc`.

  Args:
    density: fraction of a compressed leaf's entries sent per round (0.001 = 99.9% sparsity), in (0, 1].
      At density 1 with no warm-up every leaf takes the dense path: momentum SGD on the averaged gradient.
    momentum: m, in [0, 1).
    axis_name: the worker axis.
    nesterov: Nesterov momentum correction (the official code's ``nesterov``).
    clip_norm: global clipping threshold; each worker clips its gradient's norm to clip_norm / sqrt(N)
      (local gradient clipping). None disables it (the official configs' default).
    momentum_correction: accumulate momentum locally before sparsifying (False: the paper's Eq. 7 baseline).
    momentum_masking: zero the momentum at the sent entries.
    warmup_epochs: epochs of sparsity warm-up (0: none).
    steps_per_epoch: update steps per epoch (for the warm-up stages).
    warmup: 'paper' (the paper and README schedule) or 'code' (the official code's default coefficient).
    sample_ratio: fraction of entries sampled for the threshold (the code clamps it to [0.01, 1]).
    min_ndim: leaves with at least this many dimensions are compressed; the others go dense.
    index_dtype: 'auto', 'int32' or 'int64': how indices are counted in the bytes sent.
    mode: 'gather' all-gathers every worker's (values, indices) payload and scatters them (what a network
      moves); 'psum' averages the sparsified velocities densely (the same numbers up to summation order,
      cheaper when simulating many workers under vmap). The bytes counted are the payload's either way.
    seed: seeds the sample offsets.

  Returns:
    A ``GradientTransformation`` for one worker with :class:`DGCState`; ``state.comm.sent`` is exact.

  >>> import jax, jax.numpy as jnp
  >>> from decentral import axis
  >>> tx = scale_by_dgc(0.25, 0.0, axis_name='w')
  >>> def step(g):
  ...   u, s = tx.update(g, tx.init(g))
  ...   return u, s.comm.sent
  >>> g = {'w': jnp.array([[[4., 0.], [0., 1.]], [[0., 2.], [0., 3.]]]), 'b': jnp.ones((2, 2))}
  >>> u, sent = axis.run(step, 2, axis_name='w')(g)
  >>> u['w'][0], u['b'][0], sent[0]  # each worker sends its largest entry: 4 bytes + a uint8 index; b dense
  (Array([[2. , 0. ],
         [0. , 1.5]], dtype=float32), Array([1., 1.], dtype=float32), Array(13, dtype=int32))
  """
  with optim_checks.owner('scale_by_dgc') as name:  # dgc's name when dgc called this
    checks.fraction(density, 'density')
    optim_checks.decay_rate('momentum', momentum)
    if clip_norm is not None:
      optim_checks.positive('clip_norm', clip_norm)
    checks.non_negative_int(warmup_epochs, 'warmup_epochs')
    checks.positive_int(steps_per_epoch, 'steps_per_epoch')
    checks.fraction(sample_ratio, 'sample_ratio')
    optim_checks.one_of('index_dtype', index_dtype, ('auto', 'int32', 'int64'))
    optim_checks.one_of('mode', mode, ('gather', 'psum'))
  if not isinstance(axis_name, str):
    raise TypeError(f'axis_name must be a string, got {axis_name!r}')
  densities = warmup_densities(density, warmup_epochs, warmup)
  sample_ratio = min(max(sample_ratio, 0.01), 1.0)  # as DGCCompressor
  sparse_at_all = any(r < 1 for r in densities)

  def compressed(x):
    return sparse_at_all and np.ndim(x) >= min_ndim

  def init_fn(params):
    zeros = jax.tree.map(jnp.zeros_like, params)
    return DGCState(zeros, zeros, jnp.zeros([], jnp.int32), jax.random.key(seed), ledger.init_stats())

  def update_fn(updates, state, params=None):
    del params
    optim_checks.same_structure(updates, state.momentum, name)
    n = axis.axis_size(axis_name)
    m = jnp.asarray(momentum, jnp.float32)
    if clip_norm is not None:  # local clipping: the global threshold scaled by N^(-1/2)
      updates = optax.clip_by_global_norm(clip_norm / math.sqrt(n)).update(updates, optax.EmptyState())[0]
    stage = jnp.minimum(state.count // steps_per_epoch, warmup_epochs)
    key = jax.random.fold_in(jax.random.fold_in(state.key, state.count), axis.worker_index(axis_name))
    leaves, treedef = jax.tree.flatten(updates)
    us, vs = treedef.flatten_up_to(state.momentum), treedef.flatten_up_to(state.velocity)
    outs, new_u, new_v, sent = [], [], [], jnp.zeros([], jnp.int32)
    for i, (g, u, v) in enumerate(zip(leaves, us, vs)):
      g32, u32, v32 = g.astype(jnp.float32), u.astype(jnp.float32), v.astype(jnp.float32)
      if not compressed(g):
        avg = lax.pmean(g32, axis_name)
        u32, out = _momentum(u32, avg, m, nesterov)
        outs.append(out.astype(g.dtype)), new_u.append(u32.astype(u.dtype)), new_v.append(v)
        sent = sent + g.size * g.dtype.itemsize
        continue
      if momentum_correction:
        if nesterov:
          u32 = (u32 + g32) * m
          v32 = v32 + u32 + g32
        else:
          u32 = m * u32 + g32
          v32 = v32 + u32
      else:
        v32 = v32 + g32
      plan = _plan(g.size, density, densities, sample_ratio)
      flat_v = v32.reshape(-1)
      keep, n_sent = _select(flat_v, plan, stage, jax.random.fold_in(key, i))
      sent_mask = keep.reshape(g.shape)
      if mode == 'psum':  # the same numbers as decoding every payload; cheaper when simulating under vmap
        agg = lax.pmean(jnp.where(sent_mask, v32, 0.0).astype(g.dtype).astype(jnp.float32), axis_name)
      else:  # what a network moves: every worker's (values, indices), scattered and averaged
        idx, valid = _slots(keep, plan.k_max)
        values = jnp.where(valid, flat_v[idx], 0.0).astype(g.dtype)
        all_values = lax.all_gather(values, axis_name).astype(jnp.float32)
        all_idx = lax.all_gather(idx, axis_name)
        agg = (jnp.zeros(g.size, jnp.float32).at[all_idx.reshape(-1)].add(all_values.reshape(-1)) / n
               ).reshape(g.shape)
      v32 = jnp.where(sent_mask, 0.0, v32)
      if momentum_correction and momentum_masking:
        u32 = jnp.where(sent_mask, 0.0, u32)
      if not momentum_correction:  # Eq. 7 baseline: momentum on the aggregated sparse gradient
        u32, agg = _momentum(u32, agg, m, nesterov)
      outs.append(agg.astype(g.dtype)), new_u.append(u32.astype(u.dtype)), new_v.append(v32.astype(v.dtype))
      sent = sent + n_sent * (g.dtype.itemsize + _index_bytes(index_dtype, g.size))
    unflat = lambda xs: jax.tree.unflatten(treedef, xs)  # noqa: E731
    return unflat(outs), DGCState(unflat(new_u), unflat(new_v), state.count + 1, state.key,
                                  ledger.step_stats(state.comm, sent))

  return optax.GradientTransformation(init_fn, update_fn)


def _momentum(u, g, m, nesterov):
  """(new buffer, direction) of momentum SGD as the official code's dense path."""
  if nesterov:
    u = (u + g) * m
    return u, u + g
  u = m * u + g
  return u, u


def dgc(learning_rate: optax.ScalarOrSchedule, density: float = 0.001, momentum: float = 0.9, *,
        axis_name: str, **kwargs) -> optax.GradientTransformation:
  """DGC-SGD: ``chain(scale_by_dgc(density, momentum, ...), scale_by_learning_rate(learning_rate))``.

  The paper pairs the sparsity warm-up with a learning-rate warm-up: pass a schedule as ``learning_rate``.
  """
  with optim_checks.owner('dgc'):
    optim_checks.learning_rate(learning_rate)
    return optax.chain(scale_by_dgc(density, momentum, axis_name=axis_name, **kwargs),
                       optax.scale_by_learning_rate(learning_rate))
