"""Argument checks shared by the optimizers: fail early with a ``ValueError`` naming the optimizer and the argument.

The contract every registered optimizer follows (the conformance suites check it through the registries):

* a negative or non-finite learning rate, and any hyperparameter outside its range (NaN included), raise a
  ``ValueError`` reading ``'<optimizer>: <argument> must be ..., got ...'`` when the optimizer is *built*;
* an update tree that does not match the tree the state was initialised with raises a ``ValueError`` naming the
  transform (:func:`same_structure`), never a bare JAX tree error or a silent broadcast;
* a non-finite gradient is not checked at ``update`` time (that would cost a reduction and a host sync per step);
  it propagates, unless the optimizer is wrapped in ``optax.apply_if_finite(tx, max_consecutive_errors)``, which
  skips a step whose gradient has a NaN or inf: the update is zero, so the parameters are unchanged, and the
  wrapped optimizer's state (``state.inner_state``) is left as it was; only the wrapper's counters move, and
  after ``max_consecutive_errors`` skips in a row the step is taken anyway. The test is on the gradient: a NaN
  that first appears inside the optimizer (say, in a curvature oracle) is not caught.

Which optimizer is named: the check functions take the argument's name and prefix the optimizer of the outermost
enclosing :func:`owner` block, so a public optimizer names itself even when the check runs in a transform it
builds (``hybrid_auon`` -> ``scale_by_auon``); :meth:`optim.registry.Entry.build` opens that block with the
registered name, so whatever a registry builds names its entry.

Hyperparameters may be schedules or traced: ``optax.inject_hyperparams`` passes them as arrays inside ``update``.
Only concrete values are checked, so a traced value is never rejected at trace time; a learning-rate schedule is
checked at its first step only (``schedule(0)``): its later values cannot be checked when the optimizer is built.

>>> with owner('my_sgd'):
...   non_negative('learning_rate', -1.0)
Traceback (most recent call last):
...
ValueError: my_sgd: learning_rate must be finite and >= 0, got -1.0
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

_OWNER: contextvars.ContextVar[str | None] = contextvars.ContextVar('optimizer_owner', default=None)


@contextlib.contextmanager
def owner(name: str) -> Iterator[str]:
  """Within the block, check messages name ``name`` as the optimizer, unless an enclosing block named one already
  (the function the user called wins). Yields the name in force, for messages raised later, at ``update`` time."""
  token = _OWNER.set(name) if _OWNER.get() is None else None
  try:
    yield _OWNER.get()
  finally:
    if token is not None:
      _OWNER.reset(token)


def qualified(name: str) -> str:
  """``'<optimizer>: <name>'`` with the optimizer of the enclosing :func:`owner` block (``name`` alone outside,
  or when it starts with that optimizer already)."""
  where = _OWNER.get()
  return name if where is None or name.startswith(f'{where}:') else f'{where}: {name}'


def is_concrete(value: Any) -> bool:
  return not isinstance(value, jax.core.Tracer) and not callable(value)


def check(name: str, value: Any, ok: Callable[[float], bool], expected: str) -> None:
  """Raises ``ValueError`` naming ``name`` unless ``value`` is finite and ``ok(value)`` (traced values pass)."""
  if not is_concrete(value):
    return
  try:
    v = np.asarray(value, dtype=float)
  except (TypeError, ValueError):
    raise ValueError(f'{qualified(name)} must be a number, got {value!r}') from None
  if v.shape != ():
    raise ValueError(f'{qualified(name)} must be a scalar, got shape {v.shape}')
  v = float(v)
  if not (np.isfinite(v) and ok(v)):
    raise ValueError(f'{qualified(name)} must be {expected}, got {value!r}')


def non_negative(name: str, value: Any) -> None:
  check(name, value, lambda v: v >= 0, 'finite and >= 0')


def positive(name: str, value: Any) -> None:
  check(name, value, lambda v: v > 0, 'finite and > 0')


def decay_rate(name: str, value: Any) -> None:
  check(name, value, lambda v: 0 <= v < 1, 'in [0, 1)')


def positive_int(name: str, value: Any) -> None:
  check(name, value, lambda v: v >= 1 and v == int(v), 'an integer >= 1')


def learning_rate(value: Any, name: str = 'learning_rate') -> None:
  """A float or a schedule: a float must be finite and >= 0; a schedule is checked at its first step,
  ``value(0)``, the one value known when the optimizer is built."""
  if callable(value):
    value = value(0)
    if isinstance(value, jax.core.Tracer):
      return
    return check(name, value, lambda v: v >= 0, 'finite and >= 0 (a schedule: at step 0)')
  non_negative(name, value)


def one_of(name: str, value: Any, allowed: tuple[Any, ...]) -> None:
  if value not in allowed:
    raise ValueError(f'{qualified(name)} must be one of {allowed}, got {value!r}')


def same_structure(updates: Any, reference: Any, what: str) -> None:
  """Raises ``ValueError`` naming ``what`` when ``updates`` and the tree the state was built for (``reference``)
  differ in structure or leaf shapes."""
  if jax.tree.structure(updates) != jax.tree.structure(reference):
    raise ValueError(f'{what}: the tree structure {jax.tree.structure(updates)} does not match that of the tree '
                     f'the state was initialised with, {jax.tree.structure(reference)}')
  for u, r in zip(jax.tree.leaves(updates), jax.tree.leaves(reference)):
    if jnp.shape(u) != jnp.shape(r):
      raise ValueError(f'{what}: an update of shape {jnp.shape(u)} meets a state leaf of shape {jnp.shape(r)}')


def structure_checked(tx: Any, what: str) -> Any:
  """``tx`` whose ``update`` first checks the updates against the parameters, when they are given
  (:func:`same_structure`): for chains of optax transforms, whose own tree errors do not name the optimizer."""

  def update(updates, state, params=None, **extra_args):
    if params is not None:
      same_structure(updates, params, what)
    return tx.update(updates, state, params, **extra_args)

  return tx._replace(update=update)


def _momentum(name: str, value: Any) -> None:
  if value is not None:
    decay_rate(name, value)


def _optional_learning_rate(name: str, value: Any) -> None:
  if value is not None:
    learning_rate(value, name)


# The checks of optax's hyperparameters, by argument name (optax names them consistently across optimizers).
OPTAX_ARGUMENTS: dict[str, Callable[[str, Any], None]] = {
    'learning_rate': _optional_learning_rate, 'adam_learning_rate': _optional_learning_rate,
    'b1': decay_rate, 'b2': decay_rate, 'beta': decay_rate, 'decay': decay_rate, 'momentum': _momentum,
    'adam_b1': decay_rate, 'adam_b2': decay_rate,
    'eps': non_negative, 'eps_root': non_negative, 'adam_eps_root': non_negative,
    'weight_decay': non_negative, 'adam_weight_decay': non_negative,
    'ns_steps': positive_int,
}


def validated(factory: Callable[..., Any], name: str | None = None,
              arguments: dict[str, Callable[[str, Any], None]] | None = None) -> Callable[..., Any]:
  """``factory`` (an optimizer written elsewhere, e.g. ``optax.adam``) with this module's checks applied first.

  Each argument of ``factory`` found in ``arguments`` (default :data:`OPTAX_ARGUMENTS`) is checked, default
  values included, under the name ``name`` (default ``factory.__name__``), and the transform it returns checks
  its updates against the parameters (:func:`structure_checked`). The signature is ``factory``'s, so
  ``optax.inject_hyperparams`` and the registry see the same arguments.

  >>> import optax
  >>> validated(optax.adam)(learning_rate=-1.0)
  Traceback (most recent call last):
  ...
  ValueError: adam: learning_rate must be finite and >= 0, got -1.0
  """
  name = name or factory.__name__
  arguments = OPTAX_ARGUMENTS if arguments is None else arguments
  signature = inspect.signature(factory)

  @functools.wraps(factory)
  def build(*args, **kwargs):
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    with owner(name):
      for arg, value in bound.arguments.items():
        if arg in arguments:
          arguments[arg](arg, value)
    return structure_checked(factory(*args, **kwargs), name)

  return build
