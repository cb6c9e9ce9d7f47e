"""Per-example clipping: every example's contribution to a sum bounded in L2 norm, the step DP-SGD's privacy rests on.

Per-example updates carry a leading batch axis of size B on every leaf (``optim.per_example_grads`` makes them).
Example i is scaled by ``min(1, C / ||g_i||)`` so that its contribution has norm at most C, either with one global
norm over all leaves (``l2_norm_clip`` a number, Abadi et al. 2016, arXiv 1607.00133) or with a budget C_l per leaf
(``l2_norm_clip`` a tree of numbers with the structure of one example, Opacus's per-layer clipping), whose total
is ``sqrt(sum_l C_l^2)`` (:func:`sensitivity`).

The rule for degenerate examples, the same in every function here:

- a zero gradient has norm 0 and passes unchanged (its scale is 1, never 0/0);
- an example with any non-finite entry (inf or NaN, in any leaf) contributes exactly zero, in every leaf: it is
  dropped from the sum as if its mask were False, so it never poisons the sum and its contribution (0) is within
  the bound. Its norm is reported as inf;
- a finite example whose squared norm overflows (entries near the dtype's maximum) is clipped, not dropped: its
  norm is then recomputed scaled by its largest entry.

The bound holds up to floating-point rounding of ``g * (C / ||g||)`` (a few ulps of C).

>>> import jax.numpy as jnp
>>> g = {'w': jnp.array([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0], [jnp.nan, 1.0]])}
>>> global_norms(g).tolist()
[5.0, 0.5, 0.0, inf]
>>> clipped_sum(g, 1.0)['w'].tolist()  # 0.6+0.3, 0.8+0.4; the zero row adds nothing, the NaN row is dropped
[0.9000000357627869, 1.2000000476837158]
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from optim import checks

PyTree = Any


def compute_dtype(x: jax.Array):
  """Sums and norms are accumulated in float32 or wider (bf16 per-example sums lose the small examples)."""
  return jnp.promote_types(x.dtype, jnp.float32)


def batch_size(per_example: PyTree) -> int:
  """The leading (batch) size shared by every leaf; a ValueError names the offending shape otherwise."""
  leaves = jax.tree.leaves(per_example)
  if not leaves:
    raise ValueError('per-example updates: the tree has no leaves')
  sizes = {jnp.shape(x)[0] if jnp.ndim(x) else None for x in leaves}
  if len(sizes) != 1 or None in sizes:
    raise ValueError('per-example updates must share a leading batch axis on every leaf, got shapes '
                     f'{[jnp.shape(x) for x in leaves]}')
  return sizes.pop()


def _rows(x: jax.Array) -> jax.Array:
  return jnp.reshape(x, (x.shape[0], -1)).astype(compute_dtype(x))


def _row_sq(x: jax.Array) -> jax.Array:
  r = _rows(x)
  # A contraction rather than sum(r * r): XLA's CPU float reductions are far slower than its dot kernels.
  return jnp.einsum('bi,bi->b', r, r)


def _row_max(x: jax.Array) -> jax.Array:
  return jnp.max(jnp.abs(_rows(x)), axis=1, initial=0.0)


def _row_finite(x: jax.Array) -> jax.Array:
  return jnp.all(jnp.isfinite(_rows(x)), axis=1)


class RowScales(NamedTuple):
  """How each example is weighted: row i contributes ``multiplier_i * g_i / prescale_i`` (0 unless ``keep_i``).

  ``prescale`` is 1 except for finite rows whose squared norm overflows, which are first divided by their largest
  entry, so that neither their norm nor their tiny clip factor leaves the dtype's range.
  """

  multiplier: Any      # [B], or a tree of [B] for per-layer budgets: min(prescale, C / ||g / prescale||)
  prescale: jax.Array  # [B]
  keep: jax.Array      # [B] bool: present (mask) and finite


def _row_scales(leaves):
  """Per-row prescale (1, or the largest entry where the squared norm overflows) and finiteness."""
  sq = sum(_row_sq(x) for x in leaves)

  def fast(_):
    ok = jnp.isfinite(sq)  # all True here; derived from sq so it keeps its manual-axis type
    return jnp.ones_like(sq), ok

  def careful(_):
    finite = jnp.all(jnp.stack([_row_finite(x) for x in leaves]), axis=0)
    big = jnp.max(jnp.stack([_row_max(jnp.where(jnp.isfinite(x), x, 0)) for x in leaves]), axis=0)
    return jnp.where(jnp.isfinite(sq) | (big == 0), 1.0, big).astype(sq.dtype), finite

  return lax.cond(jnp.all(jnp.isfinite(sq)), fast, careful, None)


def _prescaled(x: jax.Array, prescale: jax.Array, keep: jax.Array) -> jax.Array:
  """``x / prescale`` row by row, dropped rows set to 0 (so inf * 0 never makes a NaN)."""
  x = x.astype(compute_dtype(x))
  return jnp.where(_bcast(keep, x), x / _bcast(prescale, x), 0)


def _bcast(v: jax.Array, x: jax.Array) -> jax.Array:
  return jnp.reshape(v, (-1,) + (1,) * (jnp.ndim(x) - 1))


def global_norms(per_example: PyTree) -> jax.Array:
  """``||g_i||`` over all leaves, for every example i (shape [B]); inf for an example with a non-finite entry."""
  batch_size(per_example)
  leaves = jax.tree.leaves(per_example)
  prescale, finite = _row_scales(leaves)
  keep = jnp.ones_like(finite)
  norms = prescale * jnp.sqrt(sum(_row_sq(_prescaled(x, prescale, keep)) for x in leaves))
  return jnp.where(finite, norms, jnp.inf)


def is_per_layer(l2_norm_clip: Any) -> bool:
  """Whether ``l2_norm_clip`` is a tree of per-leaf budgets rather than one number."""
  return not jax.tree_util.treedef_is_leaf(jax.tree.structure(l2_norm_clip))


def sensitivity(l2_norm_clip: Any) -> jax.Array | float:
  """The L2 bound on one example's whole contribution: C, or ``sqrt(sum_l C_l^2)`` for per-layer budgets."""
  if not is_per_layer(l2_norm_clip):
    return l2_norm_clip
  return jnp.sqrt(sum(jnp.square(jnp.asarray(c, float)) for c in jax.tree.leaves(l2_norm_clip)))


def check_clip(l2_norm_clip: Any, where: str) -> None:
  """Raises a ValueError naming ``where`` unless every budget is positive (inf allowed: no clipping)."""
  for c in jax.tree.leaves(l2_norm_clip):
    if checks.is_concrete(c) and not float(np.asarray(c)) > 0:  # NaN fails too
      raise ValueError(f'{where}: l2_norm_clip must be positive (inf for no clipping), got {c!r}')


def _present(per_example: PyTree, mask: jax.Array | None) -> jax.Array:
  """The mask as a bool [B] (all True without one); a ValueError if its shape is not the batch's."""
  b = batch_size(per_example)
  keep = jnp.ones((b,), bool) if mask is None else jnp.asarray(mask, bool)
  if keep.shape != (b,):
    raise ValueError(f'mask must have shape ({b},) like the batch axis, got {keep.shape}')
  return keep


def row_scales(per_example: PyTree, l2_norm_clip: Any, mask: jax.Array | None = None) -> RowScales:
  """The weights that clip every example to norm <= C (or its per-leaf budgets), 0 where masked or non-finite."""
  keep = _present(per_example, mask)
  leaves, treedef = jax.tree.flatten(per_example)
  prescale, finite = _row_scales(leaves)
  keep = keep & finite
  sqs = [_row_sq(_prescaled(x, prescale, keep)) for x in leaves]

  def multiplier(sq, c):
    norm = jnp.sqrt(sq)
    c = jnp.asarray(c, norm.dtype)
    return jnp.where(keep, jnp.minimum(prescale, c / jnp.maximum(norm, jnp.finfo(norm.dtype).tiny)), 0.0)

  if not is_per_layer(l2_norm_clip):
    return RowScales(multiplier(sum(sqs), l2_norm_clip), prescale, keep)
  budgets = treedef.flatten_up_to(l2_norm_clip)
  return RowScales(treedef.unflatten([multiplier(sq, c) for sq, c in zip(sqs, budgets)]), prescale, keep)


def _per_leaf(scales: RowScales, l2_norm_clip: Any, treedef, n: int) -> list:
  """One multiplier array [B] per leaf of the per-example tree."""
  return treedef.flatten_up_to(scales.multiplier) if is_per_layer(l2_norm_clip) else [scales.multiplier] * n


def clip_per_example(per_example: PyTree, l2_norm_clip: Any, mask: jax.Array | None = None) -> PyTree:
  """Every example scaled to norm <= C (or its per-leaf budgets), masked and non-finite examples zeroed.

  Returns the per-example tree (leading axis B kept), in the compute dtype (float32 or wider).
  """
  scales = row_scales(per_example, l2_norm_clip, mask)
  leaves, treedef = jax.tree.flatten(per_example)
  ms = _per_leaf(scales, l2_norm_clip, treedef, len(leaves))
  return treedef.unflatten([_prescaled(x, scales.prescale, scales.keep) * _bcast(m, x) for x, m in zip(leaves, ms)])


def _finite_fast_path(leaves, fast, careful):
  """``fast(sqs)`` when every row's squared norm is finite (no masking or rescaling needed: a dot per leaf, which
  XLA does without materialising a copy of the per-example tree), ``careful()`` otherwise."""
  sqs = [_row_sq(x) for x in leaves]
  return lax.cond(jnp.all(jnp.isfinite(sum(sqs))), lambda _: fast(sqs), lambda _: careful(), None)


def clipped_sum(per_example: PyTree, l2_norm_clip: Any, mask: jax.Array | None = None) -> PyTree:
  """``sum_i clip(g_i, C)`` over the batch axis (the tree of one example), in the compute dtype."""
  keep = _present(per_example, mask)
  leaves, treedef = jax.tree.flatten(per_example)

  def fast(sqs):
    norms = [jnp.sqrt(sum(sqs))] * len(leaves) if not is_per_layer(l2_norm_clip) else [jnp.sqrt(q) for q in sqs]
    budgets = treedef.flatten_up_to(l2_norm_clip) if is_per_layer(l2_norm_clip) else [l2_norm_clip] * len(leaves)
    out = []
    for x, n, c in zip(leaves, norms, budgets):
      m = jnp.where(keep, jnp.minimum(1.0, jnp.asarray(c, n.dtype) / jnp.maximum(n, jnp.finfo(n.dtype).tiny)), 0.0)
      out.append(jnp.tensordot(m, x.astype(compute_dtype(x)), axes=(0, 0)))
    return out

  def careful():
    scales = row_scales(per_example, l2_norm_clip, mask)
    ms = _per_leaf(scales, l2_norm_clip, treedef, len(leaves))
    return [jnp.tensordot(m, _prescaled(x, scales.prescale, scales.keep), axes=(0, 0)) for x, m in zip(leaves, ms)]

  # sum_i m_i x_i as a contraction over the batch axis (a dot, not a reduction).
  return treedef.unflatten(_finite_fast_path(leaves, fast, careful))


def kept_sum(per_example: PyTree, keep: jax.Array) -> PyTree:
  """``sum_i keep_i g_i`` unclipped (rows not kept, e.g. non-finite, contribute exactly 0)."""
  leaves, treedef = jax.tree.flatten(per_example)
  w = jnp.asarray(keep, bool)

  def fast(sqs):
    del sqs
    return [jnp.tensordot(w.astype(compute_dtype(x)), x.astype(compute_dtype(x)), axes=(0, 0)) for x in leaves]

  def careful():
    ones = jnp.ones(w.shape, jnp.float32)
    return [jnp.tensordot(w.astype(compute_dtype(x)), _prescaled(x, ones, w), axes=(0, 0)) for x in leaves]

  return treedef.unflatten(_finite_fast_path(leaves, fast, careful))


def clip_tree(tree: PyTree, l2_norm_clip: Any) -> PyTree:
  """One tree (no batch axis) clipped to global norm <= C: ``x min(1, C / ||x||)`` (the same zero/non-finite rule)."""
  out = clip_per_example(jax.tree.map(lambda x: jnp.asarray(x)[None], tree), l2_norm_clip)
  return jax.tree.map(lambda y, x: y[0], out, tree)
