"""Compressed communication on the worker axis: every worker's payloads, decoded and averaged.

Inside a per-worker step, :func:`gather_decode` all-gathers every worker's payloads and returns the (weighted)
mean of their decodings; :func:`mean_over_workers` compresses, communicates and returns (mean, exact bytes this
worker sent). Error feedback (:mod:`decentral.compression.feedback`) and DGC
(:mod:`decentral.compression.deep_gradient`) build on these; byte counts go to :mod:`decentral.ledger`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from decentral.compression.trees import compress_tree, tree_nbytes
from decentral.compression.wire import Compressor

PyTree = Any


def gather_decode(c: Compressor, payloads: PyTree, like: PyTree, axis_name: str, *,
                  weights: jax.Array | None = None, mode: str = 'gather') -> PyTree:
  """sum_j w_j decode(payload_j) over the workers j on ``axis_name`` (w_j = 1/n by default).

  Call inside a per-worker step with this worker's ``payloads`` (from :func:`compress_tree`).

  Args:
    c: the compressor that produced the payloads.
    payloads: this worker's tree of payloads.
    like: a tree of arrays (or ShapeDtypeStructs) giving the decoded shapes and dtypes.
    axis_name: the worker axis.
    weights: optional (n,) weights, the same on every worker; the mean if None.
    mode: 'gather' all-gathers the payloads and decodes every worker's (what moves is the payload, as on a
      real network); 'psum' sums the decoded trees (the same numbers up to float summation order).

  Returns:
    The weighted sum, in ``like``'s dtypes (accumulated in float32).
  """
  if mode not in ('gather', 'psum'):
    raise ValueError(f"mode must be 'gather' or 'psum', got {mode!r}")
  leaves, treedef = jax.tree.flatten(like)
  ps = treedef.flatten_up_to(payloads)
  outs = []
  for p, x in zip(ps, leaves):
    if mode == 'psum':
      mine = c.decompress(p, x.shape, jnp.float32)
      if weights is None:
        out = lax.pmean(mine, axis_name)
      else:
        out = lax.psum(mine * weights[lax.axis_index(axis_name)], axis_name)
    else:
      every = jax.vmap(lambda q, x=x: c.decompress(q, x.shape, jnp.float32))(
          jax.tree.map(lambda a: lax.all_gather(a, axis_name), p))
      out = jnp.mean(every, axis=0) if weights is None else jnp.tensordot(weights.astype(jnp.float32), every, 1)
    outs.append(out.astype(x.dtype))
  return jax.tree.unflatten(treedef, outs)


def mean_over_workers(c: Compressor, tree: PyTree, key: jax.Array | None, axis_name: str, *,
                      mode: str = 'gather') -> tuple[PyTree, int]:
  """Every worker compresses its ``tree``; returns (mean over workers of the decoded trees, bytes it sent).

  Call inside a per-worker step (``decentral.axis.run``). ``key`` should differ per worker for independent
  randomness (fold in ``decentral.axis.worker_index``) or be shared (count sketches that add linearly).

  Args:
    c: the compressor, applied leaf by leaf.
    tree: this worker's tree.
    key: PRNG key for the compressor (``None`` for deterministic ones).
    axis_name: the worker axis.
    mode: 'gather' or 'psum', as in :func:`gather_decode`.

  Returns:
    (mean of the decoded trees, in ``tree``'s dtypes; the exact bytes this worker sent, a static int).
  """
  payloads = compress_tree(c, tree, key)
  return gather_decode(c, payloads, tree, axis_name, mode=mode), tree_nbytes(c, tree)
