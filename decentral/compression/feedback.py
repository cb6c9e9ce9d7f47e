"""Error feedback for compressed communication: classic EF, EF21 and EF21-W, as worker-axis transforms.

Each transform is written for one worker on ``axis_name`` (run it with :func:`decentral.axis.run`): it
compresses this worker's gradient together with its error-feedback state, communicates the payloads over the
axis (all-gather of the payloads, every worker decodes all of them) and returns the aggregated direction, the
same on every worker. Chain it with any optax optimizer, e.g. ``optax.chain(ef21(top_k(10), axis_name='w'),
optax.sgd(lr))``. The bytes this worker sent in the update are in ``state.comm`` (:mod:`decentral.ledger`).

Randomised compressors draw from ``fold_in(fold_in(key, count), worker_index)``: independent across workers
and rounds, one seed one result.

- :func:`error_feedback` (Seide et al. 2014; Karimireddy et al., 1901.09847)::

      p_i = g_i + e_i;   c_i = C(p_i);   e_i <- p_i - c_i;   direction = (1/n) sum_j c_j

  EF-SGD compresses gamma g_i + e_i; placed before the learning rate, this transform compresses g_i + e_i,
  the same method for a constant learning rate (the error is kept in gradient units).
- :func:`ef21` (Richtarik, Sokolov, Fatkhullin, 2106.05203), at the iterate x^t::

      c_i = C(grad f_i(x^t) - g_i);   g_i <- g_i + c_i;   g <- g + (1/n) sum_j c_j;   direction = g

  Its invariant: the server estimate g equals the mean of the workers' g_i (tested).
- :func:`ef21_w` (Richtarik, Gasanov, Burlachenko, 2402.10774), weights w_i = L_i / sum_j L_j::

      c_i = C(grad f_i(x^t) / (n w_i) - g_i);   g_i <- g_i + c_i;   g <- g + sum_j w_j c_j;   direction = g

  so g = sum_i w_i g_i estimates (1/n) sum_i grad f_i. With the theory step size
  :func:`ef21_stepsize` it replaces EF21's quadratic mean of the L_i by their arithmetic mean.

EF21's initialisation ``init='full'`` sends the first target dense, g_i^0 = grad f_i(x^0) (the reference
code's choice, so the first round costs the dense size); ``init='zero'`` starts from g_i = 0 and compresses
from the first round.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.flatten_util import ravel_pytree

from decentral import axis, ledger
from decentral.compression.collectives import gather_decode
from decentral.compression.sparsifiers import identity
from decentral.compression.trees import compress_tree, decompress_tree, tree_nbytes
from optim import checks as optim_checks
from decentral.compression.wire import Compressor

PyTree = Any


class ErrorFeedbackState(NamedTuple):
  error: PyTree  # e_i: what compression left out so far
  count: jax.Array
  key: jax.Array
  comm: ledger.CommStats


class EF21State(NamedTuple):
  worker: PyTree  # g_i, this worker's estimate of its (scaled) gradient
  server: PyTree  # g = sum_j w_j g_j, identical on every worker
  count: jax.Array
  key: jax.Array
  comm: ledger.CommStats


class _Packing(NamedTuple):
  """How a tree is presented to the compressor: leaf by leaf, or raveled into one vector."""

  flat: bool

  def pack(self, tree):
    return ravel_pytree(tree)[0] if self.flat else tree

  def unpack(self, packed, like):
    return ravel_pytree(like)[1](packed) if self.flat else packed


def _check(c, axis_name):
  if not isinstance(c, Compressor):
    raise TypeError(f'compressor must be a decentral.compression.Compressor, got {type(c).__name__}')
  if not isinstance(axis_name, str):
    raise TypeError(f'axis_name must be a string, got {axis_name!r}')


def error_feedback(compressor: Compressor, *, axis_name: str, flat: bool = False, seed: int = 0,
                   mode: str = 'gather') -> optax.GradientTransformation:
  """Classic error feedback (EF / EF-SGD): compress gradient plus error, keep what was not sent.

  p_i = g_i + e_i, c_i = C(p_i), e_i <- p_i - c_i; returns (1/n) sum_j c_j on every worker.

  Args:
    compressor: a :class:`decentral.compression.Compressor` (typically biased: top-k, sign).
    axis_name: the worker axis.
    flat: compress the whole tree as one raveled vector (global top-k) instead of leaf by leaf.
    seed: seeds the compressor's randomness.
    mode: 'gather' (payloads all-gathered, decoded by everyone) or 'psum' (decoded trees summed).

  Returns:
    A ``GradientTransformation`` for one worker; ``state.comm.sent`` holds the bytes it sent.

  >>> import jax, jax.numpy as jnp, optax
  >>> from decentral import axis, compression
  >>> tx = error_feedback(compression.top_k(1), axis_name='w')
  >>> def two_steps(g):
  ...   s = tx.init(g)
  ...   u1, s = tx.update(g, s)
  ...   u2, s = tx.update(g, s)
  ...   return u1, u2, s.comm.sent
  >>> u1, u2, sent = axis.run(two_steps, 2, axis_name='w')(jnp.array([[3.0, 1.0], [3.0, 1.0]]))
  >>> u1[0], u2[0], sent[0]  # the second round sends the error left by the first: 1 + 1 > 3 - 3
  (Array([3., 0.], dtype=float32), Array([3., 0.], dtype=float32), Array(5, dtype=int32))
  """
  _check(compressor, axis_name)
  packing = _Packing(flat)

  def init_fn(params):
    return ErrorFeedbackState(jax.tree.map(jnp.zeros_like, params), jnp.zeros([], jnp.int32),
                              jax.random.key(seed), ledger.init_stats())

  def update_fn(updates, state, params=None):
    del params
    optim_checks.same_structure(updates, state.error, 'error_feedback')
    p = jax.tree.map(lambda g, e: g + e.astype(g.dtype), updates, state.error)
    packed = packing.pack(p)
    payloads = compress_tree(compressor, packed, axis.worker_key(state.key, state.count, axis_name))
    mine = packing.unpack(decompress_tree(compressor, payloads, packed), p)
    error = jax.tree.map(lambda a, b: (a - b).astype(a.dtype), p, mine)
    out = packing.unpack(gather_decode(compressor, payloads, packed, axis_name, mode=mode), p)
    out = jax.tree.map(lambda o, g: o.astype(g.dtype), out, updates)
    comm = ledger.step_stats(state.comm, tree_nbytes(compressor, packed))
    return out, ErrorFeedbackState(error, state.count + 1, state.key, comm)

  return optax.GradientTransformation(init_fn, update_fn)


def _weights(smoothness, name='smoothness'):
  L = np.asarray(smoothness, np.float64)
  if L.ndim != 1 or L.size < 1 or not np.all(np.isfinite(L)) or np.any(L <= 0):
    raise ValueError(f'{name} must be a 1-D array of positive finite constants L_i, got {smoothness!r}')
  return L / L.sum()


def _ef21(compressor, axis_name, weights, init, flat, seed, mode, name):
  _check(compressor, axis_name)
  if init not in ('full', 'zero'):
    raise ValueError(f"init must be 'full' or 'zero', got {init!r}")
  packing = _Packing(flat)

  def init_fn(params):
    zeros = jax.tree.map(jnp.zeros_like, params)
    return EF21State(zeros, zeros, jnp.zeros([], jnp.int32), jax.random.key(seed), ledger.init_stats())

  def update_fn(updates, state, params=None):
    del params
    optim_checks.same_structure(updates, state.worker, name)
    n = axis.axis_size(axis_name)
    if weights is not None and len(weights) != n:
      raise ValueError(f'smoothness has {len(weights)} constants but axis {axis_name!r} has n={n} workers')
    w = None if weights is None else jnp.asarray(weights, jnp.float32)
    # The target each worker tracks: grad f_i (EF21) or grad f_i / (n w_i) (EF21-W).
    scale = 1.0 if w is None else 1.0 / (n * w[axis.worker_index(axis_name)])
    target = jax.tree.map(lambda g: (g.astype(jnp.float32) * scale).astype(g.dtype), updates)
    diff = packing.pack(jax.tree.map(lambda t, gi: t - gi.astype(t.dtype), target, state.worker))

    def compressed(diff):
      payloads = compress_tree(compressor, diff, axis.worker_key(state.key, state.count, axis_name))
      mine = decompress_tree(compressor, payloads, diff)
      total = gather_decode(compressor, payloads, diff, axis_name, weights=w, mode=mode)
      return mine, total

    def dense(diff):
      # The same collective as the compressed branch (identity payloads), so both cond branches have the
      # same types under shard_map.
      ident = identity()
      payloads = compress_tree(ident, diff, None)
      return diff, gather_decode(ident, payloads, diff, axis_name, weights=w, mode=mode)

    if init == 'full':
      first = state.count == 0
      mine, total = lax.cond(first, dense, compressed, diff)
      sent = jnp.where(first, ledger.dense_nbytes(diff), tree_nbytes(compressor, diff))
    else:
      (mine, total), sent = compressed(diff), tree_nbytes(compressor, diff)
    mine, total = packing.unpack(mine, updates), packing.unpack(total, updates)
    worker = jax.tree.map(lambda gi, c: gi + c.astype(gi.dtype), state.worker, mine)
    server = jax.tree.map(lambda g, c: g + c.astype(g.dtype), state.server, total)
    out = jax.tree.map(lambda g, u: g.astype(u.dtype), server, updates)
    return out, EF21State(worker, server, state.count + 1, state.key, ledger.step_stats(state.comm, sent))

  return optax.GradientTransformation(init_fn, update_fn)


def ef21(compressor: Compressor, *, axis_name: str, init: str = 'full', flat: bool = False,
         seed: int = 0, mode: str = 'gather') -> optax.GradientTransformation:
  """EF21 (Richtarik et al., 2106.05203): workers compress the change of their gradient estimate.

  c_i = C(grad f_i(x^t) - g_i), g_i <- g_i + c_i, g <- g + (1/n) sum_j c_j; returns g (every worker).
  Called at x^t with the gradients there, it returns the g^t with which x^{t+1} = x^t - gamma g^t.

  Args:
    compressor: a contractive compressor (top-k with alpha = k/d in the paper).
    axis_name: the worker axis.
    init: 'full' sends grad f_i(x^0) dense in the first round (g_i^0 = grad f_i(x^0), the reference code);
      'zero' starts from g_i = 0.
    flat: compress the raveled tree as one vector (global top-k) instead of leaf by leaf.
    seed: seeds the compressor's randomness.
    mode: 'gather' or 'psum' (see :func:`decentral.compression.gather_decode`).

  Returns:
    A ``GradientTransformation`` with :class:`EF21State` (``worker`` = g_i, ``server`` = g, ``comm``).

  >>> import jax.numpy as jnp
  >>> from decentral import axis, compression
  >>> tx = ef21(compression.top_k(1), axis_name='w')
  >>> def run(g):
  ...   s = tx.init(g[0])
  ...   for t in range(3):
  ...     u, s = tx.update(g[t], s)
  ...   return u, s.comm.sent
  >>> g = jnp.array([[[1.0, 2.0], [3.0, 0.0]], [[2.0, 2.0], [3.0, 1.0]], [[2.0, 3.0], [3.0, 1.0]]])
  >>> u, sent = axis.run(run, 2, axis_name='w', in_axes=1)(g)  # g[t, i]: round t, worker i
  >>> u[0], sent[0]
  (Array([2.5, 2. ], dtype=float32), Array(5, dtype=int32))
  """
  return _ef21(compressor, axis_name, None, init, flat, seed, mode, 'ef21')


def ef21_w(compressor: Compressor, smoothness: Sequence[float], *, axis_name: str, init: str = 'full',
           flat: bool = False, seed: int = 0, mode: str = 'gather') -> optax.GradientTransformation:
  """EF21-W (Richtarik, Gasanov, Burlachenko, 2402.10774): EF21 weighted by the smoothness constants.

  w_i = L_i / sum_j L_j; c_i = C(grad f_i(x^t) / (n w_i) - g_i), g_i <- g_i + c_i, g <- g + sum_j w_j c_j;
  returns g = sum_i w_i g_i. Equal L_i give EF21 exactly. Use :func:`ef21_stepsize` with ``weighted=True``
  (L_AM in place of L_QM) for the step size.

  Args:
    compressor: a contractive compressor.
    smoothness: the n constants L_i, one per worker in axis order.
    axis_name, init, flat, seed, mode: as in :func:`ef21`.

  Returns:
    A ``GradientTransformation`` with :class:`EF21State`.
  """
  return _ef21(compressor, axis_name, _weights(smoothness), init, flat, seed, mode, 'ef21_w')


def ef21_stepsize(smoothness_global: float, smoothness: Sequence[float], alpha: float, *,
                  weighted: bool = False) -> float:
  """EF21's theoretical step size gamma = 1 / (L + L_tilde sqrt(beta / theta)).

  theta = 1 - sqrt(1 - alpha), beta = (1 - alpha) / (1 - sqrt(1 - alpha)); L_tilde is the quadratic mean
  sqrt(mean L_i^2) for EF21 (2106.05203, Thm 1) and the arithmetic mean mean L_i for EF21-W and the
  reweighted analysis of EF21 (2402.10774).

  Args:
    smoothness_global: L, the smoothness constant of f = (1/n) sum f_i.
    smoothness: the L_i.
    alpha: the compressor's contraction (k/d for top-k), in (0, 1].
    weighted: use the arithmetic mean (EF21-W) instead of the quadratic mean.

  >>> round(ef21_stepsize(1.0, [1.0, 3.0], 0.5), 4), round(ef21_stepsize(1.0, [1.0, 3.0], 0.5, weighted=True), 4)
  (0.1563, 0.1716)
  """
  L = np.asarray(smoothness, np.float64)
  _weights(L)
  if not (0 < alpha <= 1):
    raise ValueError(f'alpha must be in (0, 1], got {alpha!r}')
  if not (smoothness_global > 0 and math.isfinite(smoothness_global)):
    raise ValueError(f'smoothness_global must be positive and finite, got {smoothness_global!r}')
  root = math.sqrt(1 - alpha)
  ratio = 0.0 if alpha == 1 else math.sqrt((1 - alpha) / (1 - root) / (1 - root))
  tilde = float(L.mean()) if weighted else float(np.sqrt(np.mean(L ** 2)))
  return 1.0 / (smoothness_global + tilde * ratio)
