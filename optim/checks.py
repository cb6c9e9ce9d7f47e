"""Argument checks shared by the element-wise optimizers: fail early, naming the argument.

Hyperparameters may arrive traced (``optax.inject_hyperparams`` passes them as arrays inside ``update``);
only concrete values are checked, so a schedule or an injected value is never rejected at trace time.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(value: Any) -> bool:
  return not isinstance(value, jax.core.Tracer) and not callable(value)


def check(name: str, value: Any, ok: Callable[[float], bool], expected: str) -> None:
  """Raises ``ValueError`` naming ``name`` unless ``value`` is finite and ``ok(value)`` (traced values pass)."""
  if not is_concrete(value):
    return
  v = np.asarray(value)
  if v.shape != ():
    raise ValueError(f'{name} must be a scalar, got shape {v.shape}')
  v = float(v)
  if not (np.isfinite(v) and ok(v)):
    raise ValueError(f'{name} must be {expected}, got {value!r}')


def non_negative(name: str, value: Any) -> None:
  check(name, value, lambda v: v >= 0, 'finite and >= 0')


def decay_rate(name: str, value: Any) -> None:
  check(name, value, lambda v: 0 <= v < 1, 'in [0, 1)')


def one_of(name: str, value: Any, allowed: tuple[Any, ...]) -> None:
  if value not in allowed:
    raise ValueError(f'{name} must be one of {allowed}, got {value!r}')


def same_structure(updates: Any, reference: Any, what: str) -> None:
  """Raises ``ValueError`` when ``updates`` and the tree the state was built for differ in structure or shapes."""
  if jax.tree.structure(updates) != jax.tree.structure(reference):
    raise ValueError(f'{what}: the tree structure {jax.tree.structure(updates)} does not match that of the tree '
                     f'the state was initialised with, {jax.tree.structure(reference)}')
  for u, r in zip(jax.tree.leaves(updates), jax.tree.leaves(reference)):
    if jnp.shape(u) != jnp.shape(r):
      raise ValueError(f'{what}: an update of shape {jnp.shape(u)} meets a state leaf of shape {jnp.shape(r)}')
