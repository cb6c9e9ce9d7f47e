"""Decentralized SGD, robust decentralized SGD and MoNNA, written per worker on the worker axis.

Each worker holds its own parameters. These transforms need ``params`` in ``update`` and return the update that
moves a worker's parameters to its mixed half-step model, so they chain after any local optimizer:

- :func:`gossip_step` / :func:`dsgd`: local step, then gossip along a topology (adapt-then-combine),
  :math:`x_i \\leftarrow \\sum_j W_{ij}(x_j - \\gamma g_j)`.
- :func:`robust_gossip` / :func:`robust_dsgd`: local step, then every worker applies an aggregation rule to the
  half-step models it receives (all workers, or its neighbours on a regular graph), centred at its own.
- :func:`monna`: local Polyak momentum, then nearest-neighbour averaging (Farhadkhani et al. 2023).

Every gossip method of :mod:`decentral.p2p` that takes a local SGD step and then mixes is built by
:func:`sgd_then` (checked arguments, then ``optax.chain(optax.sgd, mixing)``); its mixing transforms ask for the
parameters with :func:`need_params`.

Byzantine workers (the last f of the axis) are simulated by ``attack``: they send ``attack(honest half-step
models)`` instead of their own (:func:`decentral.replace_faulty`), as in the MoNNA code where attacks act on the
models exchanged.

>>> import jax, jax.numpy as jnp, optax
>>> from decentral import axis
>>> from decentral.p2p import topology
>>> tx = dsgd(0.1, topology.ring(4), axis_name='workers')
>>> def step(p):
...   u, _ = tx.update(p, tx.init(p), p)  # gradient of |p|^2 / 2 is p
...   return optax.apply_updates(p, u)
>>> [round(float(v), 3) for v in axis.run(step, 4)(jnp.arange(4.0)[:, None])[:, 0]]
[1.2, 0.9, 1.8, 1.5]
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from decentral import checks
from decentral.p2p.topology import Topology, gossip, neighbours
from decentral.robust.aggregation import StatefulRule
from decentral.robust.attacks import replace_faulty, strongest
from decentral.robust.distance import nearest_neighbour_average
from decentral.stacked import col_sums, compute_dtype, num_workers
from optim import checks as optim_checks

PyTree = Any


def need_params(params: Any, name: str) -> None:
  """Raises the ValueError of a mixing transform called without ``params`` (it moves the worker's parameters)."""
  if params is None:
    raise ValueError(f'{name} needs the parameters: call update(updates, state, params)')


def sgd_then(name: str, learning_rate: optax.ScalarOrSchedule, momentum: float | None,
             mixing: Callable[[], optax.GradientTransformation], *,
             gradient: Callable[[], optax.GradientTransformation] | None = None) -> optax.GradientTransformation:
  """A local SGD step, then ``mixing``: ``optax.chain([gradient()], optax.sgd(learning_rate, momentum), mixing())``.

  The skeleton of every adapt-then-combine gossip method: the learning rate and momentum are checked, and
  ``mixing`` and ``gradient`` are built, under the method's ``name`` (:func:`optim.checks.owner`), so a bad
  argument raises a ValueError naming the method; an updates tree unlike the parameters raises one too
  (:func:`optim.checks.structure_checked`).

  Args:
    name: the method, named by its errors.
    learning_rate: the local step size (or schedule).
    momentum: optional local heavy-ball momentum (optax.sgd convention); None: plain SGD.
    mixing: builds the transform that mixes the half-step models (it needs ``params``).
    gradient: optionally builds a transform of the gradient before the step (DFedSAM's SAM gradient).

  Returns:
    A ``GradientTransformation`` for one worker (a ``GradientTransformationExtraArgs`` when a part takes extra
    arguments), called as ``update(grads, state, params, **extra)``.
  """
  with optim_checks.owner(name) as owner:
    optim_checks.learning_rate(learning_rate)
    if momentum is not None:
      optim_checks.decay_rate('momentum', momentum)
    parts = ([] if gradient is None else [gradient()]) + [optax.sgd(learning_rate, momentum), mixing()]
    return optim_checks.structure_checked(optax.chain(*parts), owner)  # a mismatched tree: a ValueError naming it


def gossip_step(topology: Topology, *, axis_name: str, alive=None) -> optax.GradientTransformation:
  r"""Gossip after the local step: the update that moves x_i to :math:`\sum_j W_{ij}(x_j + u_j)`.

  Args:
    topology: the graph (its size must match the axis).
    axis_name: the worker axis.
    alive: optional (n,) mask of the workers up this round (see :func:`decentral.gossip`).

  Returns:
    A ``GradientTransformation`` (stateless; needs ``params``).
  """

  def init_fn(params):
    del params
    return optax.EmptyState()

  def update_fn(updates, state, params=None):
    need_params(params, 'gossip_step')
    half = jax.tree.map(lambda p, u: p + u.astype(p.dtype), params, updates)
    mixed = gossip(half, topology, axis_name, alive=alive)
    return jax.tree.map(lambda m, p: (m - p).astype(p.dtype), mixed, params), state

  return optax.GradientTransformation(init_fn, update_fn)


def dsgd(learning_rate: optax.ScalarOrSchedule, topology: Topology, *, axis_name: str,
         momentum: float | None = None, alive=None) -> optax.GradientTransformation:
  r"""Decentralized SGD (Lian et al. 2017, arXiv 1705.09056), adapt-then-combine.

  .. math:: x_i \leftarrow \sum_j W_{ij}\,(x_j - \gamma\, g_j)

  ``optax.chain(optax.sgd(learning_rate, momentum), gossip_step(topology))``; the momentum, if any, is local.

  Args:
    learning_rate: step size gamma (or schedule).
    topology: the communication graph.
    axis_name: the worker axis.
    momentum: optional local heavy-ball momentum (optax.sgd convention).
    alive: optional (n,) mask of the workers up (node failures).

  Returns:
    A ``GradientTransformation`` for one worker (needs ``params``).
  """
  return sgd_then('dsgd', learning_rate, momentum, lambda: gossip_step(topology, axis_name=axis_name, alive=alive))


class RobustGossipState(NamedTuple):
  count: jax.Array
  key: jax.Array


def _receive(sent, topology, axis_name):
  """The stacked models this worker receives: everyone's (all_gather), or its neighbours' on a regular graph."""
  if topology is not None and topology.perms is None and topology.shifts is None:
    raise ValueError('robust gossip needs the complete graph (topology=None) or a regular graph given by '
                     'permutations (circulant, torus, exponential); a general graph gives workers different '
                     'numbers of neighbours')
  return neighbours(sent, topology, axis_name)[0]


def robust_gossip(rule, *, axis_name: str, f: int, attack=None, topology: Topology | None = None,
                  center: bool = True, seed: int = 0, keep_own: bool | jax.Array = False
                  ) -> optax.GradientTransformation:
  r"""Robust mixing of the half-step models: :math:`x_i \leftarrow \mathrm{rule}(\{x_j + u_j\}_{j \in N_i})`.

  Every worker sends its half-step model :math:`x_j + u_j` (the faulty ones send ``attack`` of the honest
  half-step models), receives those of its neighbourhood :math:`N_i` -- everyone when ``topology`` is None, else
  its neighbours on a regular graph, by ``ppermute`` -- and applies ``rule`` with ``f``. With ``center`` the rule
  sees the received models minus its own, and the result is shifted back: identical for translation-equivariant
  rules, better float32 precision, and the natural centre for rules that are not (geometric median from zero,
  centered clipping: the decentralized "self-centered" variants).

  Args:
    rule: a stateless aggregation rule ``rule(stacked, *, f, key)``.
    axis_name: the worker axis.
    f: the number of faulty workers, both simulated (the last f, when ``attack`` is given) and tolerated.
    attack: optional attack ``(honest, *, f, key) -> vector`` on the half-step models.
    topology: None (complete graph) or a circulant/torus topology.
    center: centre the rule at the worker's own half-step model.
    seed: seeds the shared key (randomised rules and attacks).
    keep_own: faulty workers send their own model (label flipping); static or traced bool.

  Returns:
    A ``GradientTransformation`` (needs ``params``).
  """
  if isinstance(rule, StatefulRule):
    raise ValueError('robust_gossip: pass a stateless rule (state per neighbourhood is not supported)')
  checks.non_negative_int(f, 'robust_gossip: f')

  def init_fn(params):
    del params
    return RobustGossipState(jnp.zeros([], jnp.int32), jax.random.key(seed))

  def update_fn(updates, state, params=None):
    need_params(params, 'robust_gossip')
    key = jax.random.fold_in(state.key, state.count)
    k_attack, k_rule = jax.random.split(key)
    half = jax.tree.map(lambda p, u: p.astype(compute_dtype(p)) + u.astype(compute_dtype(p)),
                        params, updates)
    sent = half if attack is None else replace_faulty(half, attack, axis_name=axis_name, f=f,
                                                                  key=k_attack, keep_own=keep_own)
    received = _receive(sent, topology, axis_name)
    if center:
      received = jax.tree.map(lambda r, h: r - h, received, half)
    mixed = rule(received, f=f, key=k_rule)
    if center:
      mixed = jax.tree.map(lambda m, h: m + h, mixed, half)
    new = jax.tree.map(lambda m, p: (m - p).astype(p.dtype), mixed, params)
    return new, RobustGossipState(state.count + 1, state.key)

  return optax.GradientTransformation(init_fn, update_fn)


def robust_dsgd(learning_rate: optax.ScalarOrSchedule, rule, *, f: int, axis_name: str, momentum: float = 0.0,
                attack=None, topology: Topology | None = None, center: bool = True, seed: int = 0,
                keep_own: bool | jax.Array = False) -> optax.GradientTransformation:
  r"""Robust decentralized SGD with any rule: local momentum step, then :func:`robust_gossip`.

  .. math:: m_i \leftarrow \beta m_i + (1-\beta) g_i, \quad x_i \leftarrow
     \mathrm{rule}_f(\{x_j - \gamma m_j\}_{j \in N_i})

  The momentum is dampened (an EMA, ``optax.ema(beta, debias=False)``) as in the MoNNA code.

  Args:
    learning_rate: step size gamma (or schedule).
    rule: a stateless aggregation rule.
    f: number of faulty workers.
    axis_name: the worker axis.
    momentum: beta in [0, 1).
    attack, topology, center, seed, keep_own: see :func:`robust_gossip`.

  Returns:
    A ``GradientTransformation`` (needs ``params``).
  """
  with optim_checks.owner('robust_dsgd') as name:
    optim_checks.learning_rate(learning_rate)
    optim_checks.decay_rate('momentum', momentum)  # a traced beta (batched configs) passes
    tx = optax.chain(optax.ema(momentum, debias=False), optax.scale_by_learning_rate(learning_rate),
                     robust_gossip(rule, axis_name=axis_name, f=f, attack=attack, topology=topology, center=center,
                                   seed=seed, keep_own=keep_own))
    return optim_checks.structure_checked(tx, name)  # a mismatched tree: a ValueError naming it


def nearest_to_self(stacked: PyTree, *, f: int = 0, key: jax.Array | None = None) -> PyTree:
  """NNA pivoted at the origin: on models centred at the worker's own, the n - f nearest to its own model."""
  origin = jax.tree.map(lambda x: jnp.zeros(x.shape[1:], compute_dtype(x)), stacked)
  return nearest_neighbour_average(stacked, f=f, key=key, pivot=origin)


def monna(learning_rate: optax.ScalarOrSchedule, *, f: int, axis_name: str, beta: float = 0.99, attack=None,
          topology: Topology | None = None, seed: int = 0, keep_own: bool | jax.Array = False
          ) -> optax.GradientTransformation:
  r"""MoNNA (Farhadkhani et al., ICML 2023, arXiv 2209.10931): local Polyak momentum, then nearest-neighbour
  averaging of the received half-step models around one's own.

  .. math::
     m_i \leftarrow \beta m_i + (1-\beta) \nabla f_i(x_i;\xi), \qquad x_i^{1/2} = x_i - \gamma m_i, \qquad
     x_i \leftarrow \frac{1}{|S_i| - f}\sum_{j \in N_i} x_j^{1/2},

  :math:`N_i` the :math:`|S_i| - f` received models closest to :math:`x_i^{1/2}` (ByzFL ``MoNNA(f, idx=i)``).
  Convention: every worker receives all n half-step models (:math:`|S_i| = n`, synchronous complete graph) and keeps the
  n - f nearest; the official code instead lets worker i hear from itself, the f Byzantine workers and n - 2f - 1
  random honest ones (:math:`|S_i| = n - f`) and keeps n - 2f. With ``topology`` a regular graph, S_i is the
  neighbourhood. The momentum is dampened (``dampening = beta`` in the code: an EMA); the paper uses beta = 0.99.
  Ties between equidistant models: the lowest index.

  Args:
    learning_rate: step size gamma (or schedule).
    f: number of Byzantine neighbours tolerated (and simulated with ``attack``).
    axis_name: the worker axis.
    beta: momentum in [0, 1).
    attack: optional attack on the half-step models sent by the last f workers.
    topology: None (complete graph) or a regular (circulant/torus) topology.
    seed: seeds the shared key.
    keep_own: faulty workers send their own half-step model (label flipping).

  Returns:
    A ``GradientTransformation`` for one worker (needs ``params``).

  >>> import jax, jax.numpy as jnp, optax
  >>> from decentral import axis
  >>> from decentral.robust.attacks import inner_product_manipulation as ipm
  >>> attack = lambda honest, **kw: ipm(honest, tau=100.0, **kw)  # worker 3 sends -100 x the honest mean
  >>> tx = monna(0.5, f=1, beta=0.0, axis_name='workers', attack=attack)
  >>> def step(p):
  ...   u, _ = tx.update(p, tx.init(p), p)  # gradient of |p|^2 / 2 is p
  ...   return optax.apply_updates(p, u)
  >>> axis.run(step, 4)(jnp.array([[0.], [1.], [2.], [3.]]))[:, 0]  # honest half-steps 0, .5, 1 average
  Array([0.5, 0.5, 0.5, 0.5], dtype=float32)
  """
  with optim_checks.owner('monna'):
    optim_checks.learning_rate(learning_rate)
    optim_checks.decay_rate('beta', beta)
    return robust_dsgd(learning_rate, nearest_to_self, f=f, axis_name=axis_name, momentum=beta, attack=attack,
                       topology=topology, center=True, seed=seed, keep_own=keep_own)


def honest_pivot_mean(rule, *, center: bool = True):
  """The mean over honest pivots j < n - f of ``rule`` centred at x_j: the objective a line-searched attack on a
  decentralized rule maximises (the MoNNA code's P2P attack evaluation). Returns a rule."""

  def averaged(stacked, *, f=0, key=None):
    n = num_workers(stacked)

    def at(j):
      own = jax.tree.map(lambda x: x[j], stacked)
      if not center:
        return rule(stacked, f=f, key=key)
      centred = jax.tree.map(lambda x, o: x - o, stacked, own)
      return jax.tree.map(lambda m, o: m + o, rule(centred, f=f, key=key), own)

    outs = jax.vmap(at)(jnp.arange(n - f))
    return jax.tree.map(lambda x: (col_sums(x.reshape(n - f, -1)) / (n - f)).reshape(x.shape[1:]), outs)

  return averaged


def optimal_attack_for(rule, family: str, *, decentralized: bool = False, **kwargs):
  """:func:`decentral.strongest` against ``rule``; with ``decentralized`` against its mean over honest pivots."""
  target = honest_pivot_mean(rule) if decentralized else rule
  return strongest(family, target, **kwargs)

