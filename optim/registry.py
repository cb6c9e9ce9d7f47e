"""A registry of optimizers by name, for the main job, the training script and the conformance suite.

Each optimizer module registers itself at import time::

    registry.register('diffgrad', diffgrad, learning_rate=1e-3)

An entry records the factory (``factory(learning_rate=..., **hparams)`` returns an optax transform), the
hyperparameters it runs with by default on the embedded problem, and, for transforms that need an oracle at
``update`` time (``GradientTransformationExtraArgs``), a function building those extra arguments.

>>> import optax
>>> from optim import registry
>>> tx = registry.build('adam', learning_rate=0.1)
>>> 'adam' in registry.names()
True
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import optax

# extra_args(loss_fn, params, key) -> dict of keyword arguments for ``update``. ``loss_fn(params)`` returns a
# scalar on the current batch; ``logits_fn(params)`` (passed when the model has one) returns the model's logits
# so estimators that sample labels from the model (Sophia-G's Gauss-Newton-Bartlett) can use them.
ExtraArgsFn = Callable[..., Mapping[str, Any]]


@dataclasses.dataclass(frozen=True)
class Entry:
  """One registered optimizer."""

  name: str
  factory: Callable[..., optax.GradientTransformation]
  defaults: Mapping[str, Any]
  extra_args: ExtraArgsFn | None = None
  tags: frozenset[str] = frozenset()

  def oracles(self, **available: Any) -> dict[str, Any]:
    """The extra ``update`` arguments for this entry, built from the oracles a training loop has.

    ``available`` holds ``loss_fn``, ``params``, ``key`` and optionally ``logits_fn``; only the names that
    ``extra_args`` accepts are passed. Returns ``{}`` for plain transforms.
    """
    if self.extra_args is None:
      return {}
    accepted = _accepted(self.extra_args)
    if not any(p.endswith('kwargs') for p in accepted):
      available = {k: v for k, v in available.items() if k in accepted}
    return dict(self.extra_args(**available))

  def build(self, **overrides: Any) -> optax.GradientTransformation:
    unknown = set(overrides) - set(self.defaults) - _accepted(self.factory)
    if unknown:
      raise TypeError(f'optimizer {self.name!r} got unknown hyperparameters {sorted(unknown)}')
    return self.factory(**{**self.defaults, **overrides})


_REGISTRY: dict[str, Entry] = {}


def _accepted(factory: Callable[..., Any]) -> set[str]:
  import inspect
  try:
    return set(inspect.signature(factory).parameters)
  except (TypeError, ValueError):
    return set()


def register(name: str, factory: Callable[..., optax.GradientTransformation], *,
             extra_args: ExtraArgsFn | None = None, tags: tuple[str, ...] = (),
             **defaults: Any) -> Callable[..., optax.GradientTransformation]:
  """Registers ``factory`` under ``name`` with its default hyperparameters; returns ``factory``.

  Args:
    name: the name used on the command line (``--config.optimizer.name``).
    factory: ``factory(learning_rate=..., **hparams) -> GradientTransformation``.
    extra_args: for ``GradientTransformationExtraArgs``, builds the oracle arguments of ``update``.
    tags: free labels: ``'baseline'`` (optax's own), ``'stateless'`` (no per-parameter state, so a tree
      mismatch cannot be detected), ``'matrix'`` (treats 2-D leaves as matrices), ``'slow'``.
    **defaults: hyperparameters used when none are given; must include ``learning_rate``.
  """
  if name in _REGISTRY and _REGISTRY[name].factory is not factory:
    raise ValueError(f'optimizer name {name!r} is already registered')
  if 'learning_rate' not in defaults:
    raise ValueError(f'register({name!r}): defaults must include learning_rate')
  _REGISTRY[name] = Entry(name, factory, dict(defaults), extra_args, frozenset(tags))
  return factory


def get(name: str) -> Entry:
  """The entry registered under ``name``; a ``KeyError`` lists the known names otherwise."""
  _load_all()
  if name not in _REGISTRY:
    raise KeyError(f'unknown optimizer name {name!r}; known: {", ".join(sorted(_REGISTRY))}')
  return _REGISTRY[name]


def build(name: str, **overrides: Any) -> optax.GradientTransformation:
  """``get(name).build(**overrides)``."""
  return get(name).build(**overrides)


def names(*, without: tuple[str, ...] = ()) -> list[str]:
  """Registered names in registration order, leaving out entries carrying any tag in ``without``."""
  _load_all()
  return [n for n, e in _REGISTRY.items() if not e.tags & set(without)]


def entries() -> list[Entry]:
  _load_all()
  return list(_REGISTRY.values())


def _load_all() -> None:
  import optim  # noqa: F401  (importing the package registers every optimizer module)


# optax's own, the baselines everything is compared with.
register('sgd', optax.sgd, learning_rate=0.1, tags=('baseline', 'stateless'))
register('momentum', lambda learning_rate, momentum=0.9, nesterov=False: optax.sgd(
    learning_rate, momentum=momentum, nesterov=nesterov), learning_rate=0.05, tags=('baseline',))
register('adam', optax.adam, learning_rate=3e-3, tags=('baseline',))
register('adamw', optax.adamw, learning_rate=3e-3, weight_decay=1e-4, tags=('baseline',))
register('optax_adabelief', optax.adabelief, learning_rate=3e-3, tags=('baseline',))
