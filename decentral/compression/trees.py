"""Compressors on pytrees: leaf by leaf, with keys ``fold_in(key, leaf_number)``.

Ravel the tree first (``jax.flatten_util.ravel_pytree``) to compress it as one vector.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from decentral.compression.wire import Compressor

PyTree = Any


def _leaf_keys(key, n):
  return [None] * n if key is None else [jax.random.fold_in(key, i) for i in range(n)]


def compress_tree(c: Compressor, tree: PyTree, key: jax.Array | None) -> PyTree:
  """Compresses each leaf with key ``fold_in(key, leaf_number)``; returns the tree of payloads."""
  leaves, treedef = jax.tree.flatten(tree)
  payloads = [c.compress(x, k) for x, k in zip(leaves, _leaf_keys(key, len(leaves)))]
  return jax.tree.unflatten(treedef, payloads)


def decompress_tree(c: Compressor, payloads: PyTree, like: PyTree) -> PyTree:
  """Decodes a tree of payloads into arrays shaped like ``like`` (arrays or ShapeDtypeStructs)."""
  leaves, treedef = jax.tree.flatten(like)
  ps = treedef.flatten_up_to(payloads)
  return jax.tree.unflatten(treedef, [c.decompress(p, x.shape, x.dtype) for p, x in zip(ps, leaves)])


def tree_nbytes(c: Compressor, tree: PyTree) -> int:
  """Exact bytes of the leafwise encoding of ``tree`` (a static Python int, from shapes and dtypes)."""
  return sum(c.nbytes(np.shape(x), x.dtype) for x in jax.tree.leaves(tree))


def encode_tree(c: Compressor, payloads: PyTree, like: PyTree) -> bytes:
  """Host: the concatenated wire bytes of a tree of payloads (leaf order of ``like``)."""
  leaves, treedef = jax.tree.flatten(like)
  ps = treedef.flatten_up_to(payloads)
  return b''.join(c.encode(jax.device_get(p), np.shape(x), x.dtype) for p, x in zip(ps, leaves))


def roundtrip(c: Compressor, tree: PyTree, key: jax.Array | None) -> tuple[PyTree, int]:
  """(decoded tree, exact bytes sent): what a receiver reconstructs from this worker's ``tree``."""
  return decompress_tree(c, compress_tree(c, tree, key), tree), tree_nbytes(c, tree)
