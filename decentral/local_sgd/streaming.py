"""Streaming DiLoCo (Douillard et al., arXiv 2501.18512): fragments synced in turn, overlapped, in FP4.

The parameters are split into P fragments (:func:`strided_fragments`, :func:`balanced_fragments`); each is
synced every H steps, offset by H/P, its outer gradient sent ``overlap`` steps before it is applied and
quantised (FP4 E3M0 by default). :func:`streaming_step_bytes` gives the exact bytes per step.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from decentral import axis, checks, ledger
from decentral.compression.quantizers import fp4_e3m0, int8
from decentral.compression.wire import Compressor
from decentral.local_sgd.core import accumulation_dtype, default_outer, mean_reducer, widen
from optim import checks as optim_checks

PyTree = Any


def strided_fragments(params: PyTree, num_fragments: int) -> PyTree:
  """Fragment ids for the leaves of ``params``: leaf j (flatten order) -> j mod P (the paper's strided pattern
  with one leaf standing for one layer)."""
  p = checks.positive_int(num_fragments, 'num_fragments')
  leaves, treedef = jax.tree.flatten(params)
  return jax.tree.unflatten(treedef, [j % p for j in range(len(leaves))])


def balanced_fragments(params: PyTree, num_fragments: int) -> PyTree:
  """Fragment ids that balance sizes: leaves, largest first, go to the fragment with the fewest entries so far.

  Use it when the leaves are not P equal layers (a small model), so the peak bandwidth is close to 1/P.
  """
  p = checks.positive_int(num_fragments, 'num_fragments')
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
  if quantize is None or isinstance(quantize, Compressor):
    return quantize
  table = {'e3m0': fp4_e3m0, 'fp4_e3m0': fp4_e3m0, 'int8': int8, 'none': None}
  if quantize not in table:
    raise ValueError(f"quantize must be one of {sorted(table)}, None or a Compressor, got {quantize!r}")
  return table[quantize]() if table[quantize] else None


def streaming_diloco(inner: optax.GradientTransformation, outer: optax.GradientTransformation | None = None, *,
                     sync_every: int, num_fragments: int = 1, overlap: int = 0, mixing: float = 0.0,
                     quantize: str | Compressor | None = 'e3m0', fragments: Any = None,
                     axis_name: str | None = 'workers', seed: int = 0) -> optax.GradientTransformation:
  """Streaming DiLoCo: fragments synced in turn, communication overlapped with tau steps, FP4 outer gradients.

  The leaves are split into P fragments. Every h = H/P steps one fragment is synced, round robin, so fragment p
  syncs after steps (p+1)h, (p+1)h + H, ... (every H steps, offset by h). For the sync at step t:

  - at step t - tau (after its inner update) each worker sends its fragment's outer gradient
    Delta_{i,p} = anchor_p - theta_{i,p}, quantised (FP4 E3M0 by default), and the mean of the decoded
    messages is accumulated in float32 while training continues;
  - at step t: anchor_p <- OuterOpt_p(anchor_p, Delta_p) and theta_{i,p} <- alpha theta_{i,p} + (1 - alpha)
    anchor_p, where theta_{i,p} includes the tau inner steps taken meanwhile.

  With one fragment, tau = 0 and alpha = 0 this is :func:`decentral.diloco`. Each fragment has its own
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
  with optim_checks.owner('streaming_diloco') as name:
    h_total = checks.positive_int(sync_every, 'sync_every')
    p_count = checks.positive_int(num_fragments, 'num_fragments')
    if h_total % p_count:
      raise ValueError(f'{name}: sync_every={h_total} must be a multiple of num_fragments={p_count}')
    h = h_total // p_count
    if not checks.is_int(overlap) or not 0 <= overlap < h:
      raise ValueError(f'{name}: overlap (tau) must be an integer in [0, sync_every/num_fragments = {h}), '
                       f'got {overlap!r}')
    tau = int(overlap)
    alpha = checks.unit_interval(mixing, 'mixing')
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
    return axis.varying(state, axis_name)

  def update_fn(grads, state, params=None):
    if params is None:
      raise ValueError('streaming_diloco needs the current params: call update(grads, state, params)')
    optim_checks.same_structure(grads, state.anchor, 'streaming_diloco grads')
    optim_checks.same_structure(params, state.anchor, 'streaming_diloco params')
    _, groups = layout(params)
    treedef = jax.tree.structure(params)
    inner_u, inner_state = inner.update(grads, state.inner_state, params)
    count = state.count + 1
    local = jax.tree.leaves(optax.apply_updates(params, inner_u))
    anchor = jax.tree.leaves(state.anchor)
    pending = jax.tree.leaves(state.pending)
    key = axis.worker_key(state.key, count, axis_name)

    def prepare(q):
      def branch(pending):
        g = groups[q]
        delta = [widen(anchor[j]) - widen(local[j]) for j in g]
        reduced, _, sent, _ = reducer.apply(delta, (), key, axis_name)
        new = list(pending)
        for j, r in zip(g, reduced):
          new[j] = r
        return axis.varying((new, jnp.asarray(sent, jnp.int32)), axis_name)
      return branch

    def no_prepare(pending):
      return axis.varying((list(pending), jnp.zeros([], jnp.int32)), axis_name)

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
          merged = (1.0 - alpha) * widen(a) + alpha * widen(local[j])
          updates[j] = (merged - widen(leaf_params[j])).astype(leaf_params[j].dtype)
        states = tuple(new_state if r == q else s for r, s in enumerate(outer_states))
        return axis.varying((updates, new_anchor, states), axis_name)
      return branch

    def no_apply(operand):
      anchor, outer_states = operand
      return axis.varying((list(leaf_inner), list(anchor), tuple(outer_states)), axis_name)

    is_sync = count % h == 0
    sync_q = (count // h - 1) % p_count
    updates, anchor, outer_states = lax.switch(jnp.where(is_sync, sync_q, p_count),
                                               [apply(q) for q in range(p_count)] + [no_apply],
                                               (anchor, state.outer_states))
    comm = ledger.step_stats(state.comm, sent, is_prep)
    updates = [u.astype(p.dtype) for u, p in zip(updates, leaf_params)]
    new_state = StreamingDiLoCoState(count, inner_state, jax.tree.unflatten(treedef, anchor), outer_states,
                                     jax.tree.unflatten(treedef, pending), state.key, comm)
    return jax.tree.unflatten(treedef, updates), axis.varying(new_state, axis_name)

  return optax.GradientTransformation(init_fn, update_fn)


def streaming_step_bytes(params: PyTree, *, sync_every: int, num_fragments: int = 1, overlap: int = 0,
                         quantize: str | Compressor | None = 'e3m0', fragments: Any = None) -> np.ndarray:
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
