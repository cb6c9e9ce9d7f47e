"""The local-SGD core with a pluggable reduction of the pseudo-gradients, and DiLoCo on top of it.

:func:`local_sgd` runs an optax ``inner`` optimizer every step and, every H steps, moves the anchor by an
``outer`` optimizer on the pseudo-gradients reduced by a :class:`Reducer` (:func:`mean_reducer` for
:func:`diloco`; SparseLoCo and EDiT bring their own). The helpers here (float32 accumulation, the pseudo-gradient,
the tree check, :func:`default_outer`) are shared by every method of :mod:`decentral.local_sgd`.

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

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from decentral import axis, checks, ledger
from decentral.compression.sparsifiers import identity
from decentral.compression.trees import compress_tree, decompress_tree, tree_nbytes
from decentral.compression.wire import Compressor
from optim import checks as optim_checks

PyTree = Any


def accumulation_dtype(x):
  """The dtype outer gradients are accumulated in: float32, or the parameter's dtype if wider (float64)."""
  return jnp.promote_types(jnp.result_type(x), jnp.float32)


def widen(x):
  """``x`` in its :func:`accumulation_dtype`."""
  return jnp.asarray(x).astype(accumulation_dtype(x))


def widen_tree(tree):
  """Every leaf in its :func:`accumulation_dtype`."""
  return jax.tree.map(widen, tree)


def _like(tree, ref):
  return jax.tree.map(lambda x, r: jnp.asarray(x).astype(r.dtype), tree, ref)


def pseudo_gradient(anchor, local):
  """Delta_i = anchor - theta_i, in float32 (the outer gradient is accumulated in float32, or wider)."""
  return jax.tree.map(lambda a, x: widen(a) - widen(x), anchor, local)


def mean_over(tree, axis_name):
  """The mean over the workers of ``axis_name`` (``lax.pmean``); ``tree`` itself for one worker (None)."""
  return tree if axis_name is None else lax.pmean(tree, axis_name)


def default_outer(learning_rate: float = 0.7, momentum: float = 0.9) -> optax.GradientTransformation:
  """DiLoCo's outer optimizer: SGD with Nesterov momentum, lr 0.7, momentum 0.9 (torch.optim.SGD semantics).

  optax's ``sgd(nesterov=True)`` computes m <- g + mu m, update = -lr (g + mu m), which is PyTorch's
  Nesterov SGD with dampening 0 exactly.
  """
  return optax.sgd(learning_rate, momentum=momentum, nesterov=True)


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


def mean_reducer(compressor: Compressor | None = None) -> Reducer:
  """The mean of the (optionally compressed) pseudo-gradients, accumulated in float32.

  Each worker sends its Delta_i encoded by ``compressor`` (dense float32 when None); every worker decodes all
  messages and averages them in float32, so the result is the same everywhere.
  """
  c = compressor or identity()

  def apply(delta, state, key, axis_name):
    if compressor is not None:
      delta = decompress_tree(c, compress_tree(c, delta, key), delta)
      delta = widen_tree(delta)
    return mean_over(delta, axis_name), state, tree_nbytes(c, widen_tree(delta)), None

  return Reducer(lambda params: (), apply, lambda params: tree_nbytes(c, widen_tree(params)))


class LocalSGDState(NamedTuple):
  """Per-worker state of :func:`local_sgd`, hence of :func:`diloco`, :func:`decentral.sparseloco` and EDiT."""

  count: jax.Array          # inner steps taken (int32)
  inner_state: optax.OptState
  anchor: PyTree            # the global parameters at the last sync
  outer_state: optax.OptState
  reducer_state: PyTree     # error-feedback buffers, anomaly detectors, ... (() for the plain mean)
  key: jax.Array            # for randomised compressors: fold_in(fold_in(key, round), worker)
  comm: ledger.CommStats


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
  with optim_checks.owner('local_sgd') as name:  # the entry's name (diloco, edit, ...) when one built this
    h = checks.positive_int(sync_every, 'sync_every')

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
    return axis.varying(state, axis_name)  # every leaf per worker, so the state can be a scan carry

  def update_fn(grads, state, params=None):
    if params is None:
      raise ValueError('local SGD needs the current params: call update(grads, state, params)')
    optim_checks.same_structure(grads, state.anchor, f'{name} grads')
    optim_checks.same_structure(params, state.anchor, f'{name} params')
    inner_u, inner_state = inner.update(grads, state.inner_state, params)
    count = state.count + 1
    local = optax.apply_updates(params, inner_u)

    def sync(_):
      delta = pseudo_gradient(state.anchor, local)
      key = axis.worker_key(state.key, count, axis_name)
      outer_grad, red_state, sent, keep = reducer.apply(delta, state.reducer_state, key, axis_name)
      anchor, outer_state = outer_step(_like(outer_grad, state.anchor), state.outer_state, state.anchor, keep)
      updates = jax.tree.map(lambda a, p: (widen(a) - widen(p)).astype(p.dtype), anchor, params)
      out = (updates, anchor, outer_state, red_state, jnp.asarray(sent, jnp.int32))
      return axis.varying(out, axis_name)

    def no_sync(_):
      out = (inner_u, state.anchor, state.outer_state, state.reducer_state, jnp.zeros([], jnp.int32))
      return axis.varying(out, axis_name)

    is_sync = count % h == 0
    updates, anchor, outer_state, red_state, sent = lax.cond(is_sync, sync, no_sync, None)
    comm = ledger.step_stats(state.comm, sent, is_sync)
    updates = jax.tree.map(lambda u, p: u.astype(p.dtype), updates, params)
    new_state = LocalSGDState(count, inner_state, anchor, outer_state, red_state, state.key, comm)
    return updates, axis.varying(new_state, axis_name)

  return optax.GradientTransformation(init_fn, update_fn)


def diloco(inner: optax.GradientTransformation, outer: optax.GradientTransformation | None = None, *,
           sync_every: int, axis_name: str | None = 'workers', compressor: Compressor | None = None,
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


def sync_bytes(params: PyTree, compressor: Compressor | None = None) -> int:
  """Bytes one worker sends per DiLoCo sync: its pseudo-gradient, float32 dense or encoded by ``compressor``."""
  return mean_reducer(compressor).nbytes(params)
