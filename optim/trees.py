"""Tree utilities optax does not have: the bytes a tree holds (optimizer-state and wire accounting) and Gaussian
noise shaped like a tree (Langevin, DP-SGD, consensus dynamics).

>>> import jax, jax.numpy as jnp
>>> tree_bytes({'w': jnp.ones((2, 3)), 'key': jax.random.key(0)})  # 6 float32 + the key's two uint32 words
32
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def tree_bytes(tree: Any) -> int:
  """Bytes held by the array leaves of ``tree``: size x itemsize, PRNG keys counted by their key data."""
  total = 0
  for leaf in jax.tree.leaves(tree):
    if hasattr(leaf, 'dtype') and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
      leaf = jax.random.key_data(leaf)
    total += int(np.prod(np.shape(leaf), dtype=np.int64)) * np.dtype(getattr(leaf, 'dtype', np.float32)).itemsize
  return total


def gaussian_like(key: jax.Array, tree: Any) -> Any:
  """``xi ~ N(0, I)`` shaped like ``tree``, leaf ``i`` drawn from ``fold_in(key, i)`` in float32 or wider.

  Low-precision leaves (bf16, f16) get float32 noise, since bf16 normals are coarse; float64 leaves get float64.
  """
  leaves, treedef = jax.tree.flatten(tree)
  return treedef.unflatten([jax.random.normal(jax.random.fold_in(key, i), jnp.shape(x),
                                              jnp.promote_types(jnp.result_type(x), jnp.float32))
                            for i, x in enumerate(leaves)])
