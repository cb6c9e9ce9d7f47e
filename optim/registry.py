"""Registries by name: one small generic type, and the optimizers registered in it.

:class:`Registry` is the one registry type of polyak: optimizers (here), aggregation rules, attacks,
compressors and worker-axis transforms (:mod:`decentral.registry`) are all registries of it. An entry records a
factory, the keyword arguments it is built with by default, free tags, and, for transforms that need an oracle
at ``update`` time (``GradientTransformationExtraArgs``), a function building those extra arguments.

Nothing registers itself on import: the optimizers are listed once, explicitly, at the end of this module, so
the list of what the suites check and the scripts offer is read in one place.

>>> from optim import registry
>>> tx = registry.build('adam', learning_rate=0.1)
>>> 'adam' in registry.names()
True
>>> registry.get('no-such-optimizer')
Traceback (most recent call last):
...
KeyError: "unknown optimizer name 'no-such-optimizer'; known: ..."
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Generic, Iterator, Mapping, TypeVar

import optax

from optim import checks
from optim.optimizers import adabelief, adamp, auon, averaging, clipping, diffgrad, frugal, langevin, mfac
from optim.optimizers import rolling_ball, sgd_sai, sophia, sso, swan
from optim.privacy import dicesgd, dpsgd, microbatch
from optim.online import optimistic

T = TypeVar('T')

# extra_args(loss_fn, params, key[, logits_fn]) -> keyword arguments for ``update``. ``loss_fn(params)`` is a
# scalar on the current batch; ``logits_fn(params)`` (when the model has one) gives the logits, for estimators
# that sample labels from the model (Sophia-G's Gauss-Newton-Bartlett).
ExtraArgsFn = Callable[..., Mapping[str, Any]]


def accepted(fn: Callable[..., Any]) -> set[str]:
  """The keyword names ``fn`` accepts (empty when it has no inspectable signature)."""
  try:
    return set(inspect.signature(fn).parameters)
  except (TypeError, ValueError):
    return set()


@dataclasses.dataclass(frozen=True)
class Entry(Generic[T]):
  """One registered factory: ``build(**overrides)`` calls it with its defaults updated by ``overrides``."""

  name: str
  factory: Callable[..., T]
  defaults: Mapping[str, Any]
  kind: str = 'entry'
  extra_args: ExtraArgsFn | None = None
  tags: frozenset[str] = frozenset()

  def build(self, **overrides: Any) -> T:
    known = accepted(self.factory)
    takes_kwargs = any(p.kind == p.VAR_KEYWORD for p in _parameters(self.factory))
    unknown = set(overrides) - set(self.defaults) - known
    if unknown and not takes_kwargs:
      raise TypeError(f'{self.kind} {self.name!r} got unknown arguments {sorted(unknown)}; '
                      f'it takes {sorted(known | set(self.defaults))}')
    with checks.owner(self.name):  # argument errors name the entry (optim.checks)
      return self.factory(**{**self.defaults, **overrides})

  def oracles(self, **available: Any) -> dict[str, Any]:
    """The extra ``update`` arguments of this entry, built from the oracles a training loop has.

    ``available`` holds ``loss_fn``, ``params``, ``key`` and optionally ``logits_fn``; only the names that
    ``extra_args`` accepts are passed. Returns ``{}`` for entries without oracles.
    """
    if self.extra_args is None:
      return {}
    names = accepted(self.extra_args)
    if not any(p.kind == p.VAR_KEYWORD for p in _parameters(self.extra_args)):
      available = {k: v for k, v in available.items() if k in names}
    return dict(self.extra_args(**available))


def _parameters(fn):
  try:
    return list(inspect.signature(fn).parameters.values())
  except (TypeError, ValueError):
    return []


class Registry(Generic[T]):
  """Factories by name, of one kind (``'optimizer'``, ``'aggregation rule'``, ...).

  Args:
    kind: what the entries are, used in error messages.
    required: default keyword arguments every entry must declare (optimizers: ``learning_rate``).
  """

  def __init__(self, kind: str, *, required: tuple[str, ...] = ()):
    self.kind = kind
    self.required = required
    self._entries: dict[str, Entry[T]] = {}

  def register(self, name: str, factory: Callable[..., T], *, extra_args: ExtraArgsFn | None = None,
               tags: tuple[str, ...] = (), **defaults: Any) -> Callable[..., T]:
    """Adds ``factory`` under ``name`` with its default keyword arguments; returns ``factory``.

    Tags are free labels; those the suites read: ``'baseline'`` (optax's own), ``'stateless'`` (no
    per-parameter state, so a tree mismatch cannot be detected), ``'matrix'`` (treats 2-D leaves as
    matrices), ``'slow'`` (left out of the main job by default), ``'stateful'`` (a rule with state).
    """
    if name in self._entries and self._entries[name].factory is not factory:
      raise ValueError(f'{self.kind} name {name!r} is already registered')
    missing = [r for r in self.required if r not in defaults]
    if missing:
      raise ValueError(f'register({name!r}): a {self.kind} must declare defaults for {missing}')
    self._entries[name] = Entry(name, factory, dict(defaults), self.kind, extra_args, frozenset(tags))
    return factory

  def get(self, name: str) -> Entry[T]:
    """The entry registered under ``name``; a ``KeyError`` lists the known names otherwise."""
    if name not in self._entries:
      raise KeyError(f'unknown {self.kind} name {name!r}; known: {", ".join(sorted(self._entries))}')
    return self._entries[name]

  def build(self, name: str, **overrides: Any) -> T:
    """``get(name).build(**overrides)``."""
    return self.get(name).build(**overrides)

  def names(self, *, without: tuple[str, ...] = (), having: tuple[str, ...] = ()) -> list[str]:
    """Names in registration order, without entries tagged with any of ``without``, keeping only those
    tagged with all of ``having``."""
    return [n for n, e in self._entries.items() if not e.tags & set(without) and set(having) <= e.tags]

  def entries(self) -> list[Entry[T]]:
    return list(self._entries.values())

  def __contains__(self, name: object) -> bool:
    return name in self._entries

  def __iter__(self) -> Iterator[str]:
    return iter(self._entries)

  def __len__(self) -> int:
    return len(self._entries)

  def __repr__(self) -> str:
    return f'Registry({self.kind!r}, {len(self)} entries)'


optimizers: Registry[optax.GradientTransformation] = Registry('optimizer', required=('learning_rate',))

# The module-level functions act on the optimizer registry (``optim.registry.build('adam', ...)``).
register = optimizers.register
get = optimizers.get
build = optimizers.build
names = optimizers.names
entries = optimizers.entries


def _sgd_momentum(learning_rate, momentum=0.9, nesterov=False):
  return optax.sgd(learning_rate, momentum=momentum, nesterov=nesterov)


# optax's own: the baselines everything is compared with, behind the same argument checks as ours
# (checks.validated: a negative learning rate or a NaN hyperparameter raises, naming the optimizer).
register('sgd', checks.validated(optax.sgd), learning_rate=0.1, tags=('baseline', 'stateless'))
register('momentum', checks.validated(_sgd_momentum, 'momentum'), learning_rate=0.05, tags=('baseline',))
register('adam', checks.validated(optax.adam), learning_rate=3e-3, tags=('baseline',))
register('adamw', checks.validated(optax.adamw), learning_rate=3e-3, weight_decay=1e-4, tags=('baseline',))
register('optax_adabelief', checks.validated(optax.adabelief, 'optax_adabelief'), learning_rate=3e-3,
         tags=('baseline',))
# Muon orthogonalises 2-D updates with Newton-Schulz: a matrix method, and the slowest step of the set on CPU.
register('muon', checks.validated(optax.contrib.muon), learning_rate=0.02, tags=('baseline', 'matrix', 'slow'))

# The seed papers' optimizers; defaults are the learning rates tuned on the embedded digits problem.
register('diffgrad', diffgrad.diffgrad, learning_rate=1e-2)
register('adabelief', adabelief.adabelief, learning_rate=1e-2)
register('adamp', adamp.adamp, learning_rate=3e-3)
register('sgdp', adamp.sgdp, learning_rate=0.05, momentum=0.9)
register('sgd_sai', sgd_sai.sgd_sai, learning_rate=1e-2)
register('mfac', mfac.mfac, learning_rate=0.03, num_grads=32, damping=1e-2)
register('sophia_h', sophia.sophia_h, learning_rate=3e-3, gamma=0.05, extra_args=sophia.loss_oracle)
register('sophia_g', sophia.sophia_g, learning_rate=3e-3, gamma=0.04, weight_decay=1e-4,
         extra_args=sophia.logits_oracle)
register('rolling_ball', rolling_ball.rolling_ball, learning_rate=1.0, radius=0.5, projection_step_size=0.03,
         extra_args=rolling_ball.value_and_grad_oracle)
register('swan', swan.swan, learning_rate=0.02, tags=('matrix', 'stateless'))
register('auon', auon.auon, learning_rate=0.05, tags=('matrix',))
register('hybrid_auon', auon.hybrid_auon, learning_rate=0.05, tags=('matrix',))
register('frugal', frugal.frugal, learning_rate=3e-3, tags=('matrix',))
register('frugal_randomized', frugal.frugal, learning_rate=3e-3, svd_method='randomized', tags=('matrix',))
register('coordinate_clip_sgd', clipping.coordinate_clip_sgd, learning_rate=0.1, fraction=0.01)
register('sgld', langevin.sgld, learning_rate=0.1, beta=1e5, tags=('stateless',))
# SSO needs the model on the batch and the loss of its outputs; given only the loss of the parameters (the
# suites, the main job) its target space is the parameters, where it is SGD.
register('sso', sso.sso, learning_rate=0.1, extra_args=sso.parameter_space_oracle)
# DP-SGD and DiceSGD take per-example gradients; fed a batch's mean gradient (the suites, the main job) they treat
# it as one microbatch (optim.privacy.single_microbatch): the machinery runs, but that is not per-example privacy.
register('dp_sgd', checks.validated(microbatch.microbatched(dpsgd.dp_sgd), 'dp_sgd'), learning_rate=0.1,
         l2_norm_clip=1.0, noise_multiplier=0.01, tags=('stateless',))
register('dice_sgd', checks.validated(microbatch.microbatched(dicesgd.dice_sgd), 'dice_sgd'), learning_rate=0.1,
         l2_norm_clip=1.0, error_clip=1.0, noise_multiplier=0.01)
# Optimistic OMD on R^d (Euclidean), in its one-step form: optimistic gradient descent (optim/online).
register('optimistic_omd', checks.validated(optimistic.optimistic_omd), learning_rate=0.05, form='one_step')

# Composable transforms that are not optimizers on their own: the conformance suite runs each chained after an
# SGD step (``optax.chain(optax.sgd(lr), transform)``), the place each of them is meant to take.
transforms: Registry[optax.GradientTransformation] = Registry('transform')
transforms.register('coordinate_clip', clipping.coordinate_clip, fraction=0.01, tags=('stateless',))
transforms.register('tail_average', averaging.tail_average, start=2)
transforms.register('swa', averaging.swa, start=2, every=2)
transforms.register('ema_params', averaging.ema_params, decay=0.9)
transforms.register('langevin_noise', langevin.add_langevin_noise, learning_rate=0.05, beta=1e5,
                    tags=('stateless',))
transforms.register('project_to_sphere', langevin.project_to_sphere, radius=3.0)
