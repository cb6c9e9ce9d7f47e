"""Numeric helpers every theory family shares: the float64 decorator and the float64 cast of a pytree."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

PyTree = Any


def float64(fn):
  """Runs ``fn`` with ``jax_enable_x64`` on, whatever the caller's setting: every theory experiment is a float64
  computation (the setting is restored on return).

  Example:
    >>> import jax.numpy as jnp
    >>> float64(lambda: jnp.zeros(1).dtype)()
    dtype('float64')
  """

  @functools.wraps(fn)
  def wrapper(*args, **kwargs):
    with jax.enable_x64(True):
      return fn(*args, **kwargs)

  return wrapper


def tree_float64(tree: PyTree) -> PyTree:
  """Every leaf of ``tree`` as a float64 ``jax.Array`` (call it inside a :func:`float64` function).

  Example:
    >>> import numpy as np
    >>> float64(tree_float64)({'w': np.ones(2, np.float32)})['w'].dtype
    dtype('float64')
  """
  return jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), tree)
