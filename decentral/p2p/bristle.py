"""Bristle-style integration of received output layers: distance prioritising, then class-wise filtering.

Bristle (Verbraeken, de Vos and Pouwelse, arXiv 2110.11006) freezes a transferred feature extractor, so peers only
train and exchange the output layer (a linear head on fixed features), and integrates what it receives in two
stages, as the paper describes them:

1. a distance-based prioritiser: the received heads are ranked by their distance to the peer's own, with an
   explore-exploit trade-off (the nearest ones, plus some others drawn at random);
2. a performance-based integrator: each class of each received head is integrated separately, according to its
   performance on a small i.i.d. test set held by the peer.

The paper's exact scores, thresholds and weights were not available to us; this module fixes them as follows (each
one argument away). Distance: Euclidean on the whole head. Selection: the ``exploit`` nearest plus ``explore``
drawn uniformly from the rest. The performance of class c of head j is measured on the peer's test set with the
peer's own head whose class-c weights (kernel column and bias) are replaced by head j's: the accuracy and the
recall of class c. The class is accepted when it recognises some class-c samples and lowers neither the accuracy
nor the class-c recall by more than ``tolerance``; class c of the result is the recall-weighted mean of the peer's
own class-c weights and the accepted ones (:func:`bristle_integrate`). A Byzantine class (scaled, flipped or
noisy weights) wrecks the accuracy or recognises nothing and is dropped class by class, while an honest
neighbour's class that the peer never saw (non-i.i.d. classes) is kept and outweighs the peer's own. The
assumption to state with any result: every peer holds a few test samples of every class.

:func:`bristle_integrate` is one peer's integration (a pure function, jit-able); :func:`bristle_gossip` runs it on
the worker axis after the local step (every peer receives its neighbours' heads, the last f send an attack) and
:func:`bristle_dsgd` chains it after a local SGD step.

>>> import jax, jax.numpy as jnp
>>> x = jnp.array([[1., 0.], [0., 1.], [1., 0.1], [0.1, 1.]]); y = jnp.array([0, 1, 0, 1])
>>> own = {'kernel': jnp.array([[1., 0.], [0., .2]]), 'bias': jnp.zeros(2)}        # weak on class 1
>>> good = {'kernel': jnp.array([[0., 0.], [0., 1.]]), 'bias': jnp.zeros(2)}      # knows class 1 only
>>> bad = {'kernel': jnp.array([[0., 0.], [0., 0.]]), 'bias': jnp.array([0., 9.])}  # always says 1
>>> received = jax.tree.map(lambda a, b: jnp.stack([a, b]), good, bad)
>>> out = bristle_integrate(own, received, x, y, exploit=2)
>>> out['kernel'].round(2).tolist(), out['bias'].tolist()  # good's class 1 averaged in, the rest dropped
([[1.0, 0.0], [0.0, 0.6]], [0.0, 0.0])
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import optax

from decentral import axis, checks
from decentral.p2p.sgd import need_params, sgd_then
from decentral.p2p.topology import Topology, neighbours
from decentral.robust.attacks import replace_faulty
from optim import checks as optim_checks

PyTree = Any


def head_logits(head: PyTree, features: jax.Array) -> jax.Array:
  """``features @ kernel + bias``: (v, C) logits of a linear head ``{'kernel': (d, C), 'bias': (C,)}``."""
  return features @ head['kernel'] + head['bias']


def prioritise(own: PyTree, received: PyTree, *, exploit: int, explore: int = 0,
               key: jax.Array | None = None, present: jax.Array | None = None) -> jax.Array:
  """The selection mask (m,) of the received heads: the ``exploit`` nearest to ``own`` (Euclidean distance over
  the whole head; ties: lowest index) and ``explore`` more drawn uniformly at random from the others; only rows
  flagged in ``present`` (m,) (all by default: the slots of a gather that hold no neighbour's head are not)."""
  dist = sum(jnp.sum((r - o[None]).reshape(r.shape[0], -1) ** 2, axis=1)
             for r, o in zip(jax.tree.leaves(received), jax.tree.leaves(own)))
  dist = jnp.where(jnp.isfinite(dist), dist, jnp.inf)
  m = dist.shape[0]
  present = jnp.ones((m,), bool) if present is None else jnp.asarray(present, bool)
  rank = jnp.argsort(jnp.argsort(jnp.where(present, dist, jnp.inf), stable=True), stable=True)
  rank = jnp.where(present, rank, m)  # absent rows after every present one, however many are non-finite
  chosen = rank < exploit
  if explore:
    if key is None:
      raise ValueError('prioritise: explore > 0 needs a key')
    noise = jnp.where(chosen | ~present, jnp.inf, jax.random.uniform(key, (m,)))
    chosen = chosen | ((jnp.argsort(jnp.argsort(noise, stable=True), stable=True) < explore) & present)
  return chosen


def class_scores(own: PyTree, received: PyTree, features: jax.Array, labels: jax.Array
                 ) -> tuple[jax.Array, jax.Array]:
  """Accuracy and class-c recall, each (m, C), on (features, labels) of ``own`` with class c's weights replaced by
  received head j's; a non-finite class wins every vote (and so scores low)."""
  base = head_logits(own, features)                                              # (v, C)
  theirs = jax.vmap(head_logits, in_axes=(0, None))(received, features)          # (m, v, C)
  num_classes = base.shape[1]
  col = jnp.arange(num_classes)
  swapped = jnp.where(col[None, :, None, None] == col[None, None, None, :],   # (m, c, v, k): column c from j
                      jnp.moveaxis(theirs, 2, 1)[:, :, :, None], base[None, None])
  swapped = jnp.where(jnp.isfinite(swapped), swapped, jnp.inf)
  right = jnp.argmax(swapped, axis=-1) == labels[None, None, :]                  # (m, c, v)
  of_c = labels[None, :] == col[:, None]                                         # (c, v)
  recall = jnp.sum(right & of_c[None], -1) / jnp.maximum(jnp.sum(of_c, -1), 1)
  return jnp.mean(right, axis=-1), recall


def own_scores(own: PyTree, features: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The peer's own accuracy (scalar) and per-class recall (C,) on its test set."""
  right = jnp.argmax(head_logits(own, features), -1) == labels
  of_c = labels[None, :] == jnp.arange(own['bias'].shape[0])[:, None]
  return jnp.mean(right), jnp.sum(right[None] & of_c, -1) / jnp.maximum(jnp.sum(of_c, -1), 1)


def bristle_integrate(own: PyTree, received: PyTree, features: jax.Array, labels: jax.Array, *, exploit: int,
                      explore: int = 0, tolerance: float = 0.0, key: jax.Array | None = None,
                      present: jax.Array | None = None) -> PyTree:
  r"""The peer's new head from its own and the received ones (see the module docstring for the conventions).

  With :math:`a_{jc}` and :math:`r_{jc}` the accuracy and the class-c recall of the peer's head with class c taken
  from :math:`H_j` (:func:`class_scores`), :math:`a, r_c` the peer's own (:func:`own_scores`), and S the
  prioritised heads:

  .. math:: A_c = \{j \in S : a_{jc} \ge a - \tau,\ r_{jc} \ge r_c - \tau,\ r_{jc} > 0\}, \qquad
     H_{\cdot c} \leftarrow \frac{r_c H_{\cdot c} + \sum_{j \in A_c} r_{jc} (H_j)_{\cdot c}}
     {r_c + \sum_{j \in A_c} r_{jc}}

  (the peer's own class kept alone when every weight is 0). A class the peer never learnt (:math:`r_c = 0`) is
  replaced by the received versions that recognise it; a class that breaks the others' predictions, or recognises
  nothing, is left out.

  Args:
    own: the peer's head ``{'kernel': (d, C), 'bias': (C,)}``.
    received: the m received heads, stacked on a leading axis.
    features, labels: the peer's small i.i.d. test set (frozen features (v, d), int labels (v,)).
    exploit, explore: how many nearest and how many random heads the prioritiser keeps.
    tolerance: tau, the accuracy and recall a class may cost and still be accepted.
    key: for the random exploration.
    present: optional (m,) mask of the rows of ``received`` that hold a head (see :func:`prioritise`).

  Returns:
    The integrated head.
  """
  checks.non_negative_int(exploit, 'bristle_integrate: exploit')
  checks.non_negative_int(explore, 'bristle_integrate: explore')
  chosen = prioritise(own, received, exploit=exploit, explore=explore, key=key, present=present)
  own_acc, own_recall = own_scores(own, features, labels)
  acc, recall = class_scores(own, received, features, labels)
  accept = chosen[:, None] & (acc >= own_acc - tolerance) & (recall >= own_recall[None] - tolerance) & (recall > 0)
  dtype = own['kernel'].dtype
  w = jnp.where(accept, recall, 0.0).astype(dtype)                               # (m, C)
  total = own_recall.astype(dtype) + jnp.sum(w, axis=0)
  w_own = jnp.where(total > 0, own_recall.astype(dtype), 1.0)
  total = jnp.where(total > 0, total, 1.0)
  safe = jax.tree.map(lambda r: jnp.where(jnp.isfinite(r), r, 0.0), received)  # rejected rows may be inf/NaN
  kernel = (w_own * own['kernel'] + jnp.einsum('mc,mdc->dc', w, safe['kernel'])) / total
  bias = (w_own * own['bias'] + jnp.einsum('mc,mc->c', w, safe['bias'])) / total
  return {'kernel': kernel, 'bias': bias}


# ---------------------------------------------------------------------------------------------- on the worker axis


class BristleState(NamedTuple):
  count: jax.Array
  key: jax.Array


def _get(tree, path):
  for k in path:
    tree = tree[k]
  return tree


def _set(tree, path, value):
  if not path:
    return value
  if isinstance(tree, (list, tuple)):
    out = list(tree)
    out[path[0]] = _set(tree[path[0]], path[1:], value)
    return type(tree)(out)
  return {**tree, path[0]: _set(tree[path[0]], path[1:], value)}


def bristle_gossip(*, axis_name: str, exploit: int, explore: int = 0, tolerance: float = 0.0,
                   topology: Topology | None = None, kernel: Sequence[Any] = ('kernel',),
                   bias: Sequence[Any] = ('bias',),
                   f: int = 0, attack=None, keep_own: bool | jax.Array = False, seed: int = 0
                   ) -> optax.GradientTransformationExtraArgs:
  r"""Bristle's exchange after the local step: every peer sends its half-step head, receives its neighbours', and
  integrates them with :func:`bristle_integrate` on its own i.i.d. test set.

  ``update(updates, state, params, *, features, labels)``: the head is the leaves at the key paths ``kernel``
  ((d, C)) and ``bias`` ((C,)) of the parameters; only it is exchanged. The other leaves (the frozen feature
  extractor, or anything the peer trains alone) take the local step and are not mixed. ``features`` (v, d) and
  ``labels`` (v,) are the peer's test set seen through the frozen extractor. The last ``f`` workers send
  ``attack`` of the honest heads instead of theirs (:func:`decentral.replace_faulty`); the exploration draws use
  a key of each peer's own, folded from the shared round key.

  Args:
    axis_name: the worker axis.
    exploit, explore, tolerance: see :func:`bristle_integrate`.
    topology: None (everyone hears everyone, by ``all_gather``) or the graph (a circulant one by ``ppermute``);
      only the neighbours with a nonzero weight in W are heard, never oneself.
    kernel, bias: key paths of the head's kernel and bias in the parameters.
    f: the number of Byzantine peers simulated (the last f).
    attack: their attack ``(honest, *, f, key) -> head``; None: they behave.
    keep_own: faulty peers send their own head (label flipping acts on their data).
    seed: seeds the shared key.

  Returns:
    A ``GradientTransformationExtraArgs`` (needs ``params``, ``features`` and ``labels``).
  """
  checks.non_negative_int(exploit, 'bristle_gossip: exploit')
  checks.non_negative_int(explore, 'bristle_gossip: explore')
  checks.non_negative_int(f, 'bristle_gossip: f')
  optim_checks.non_negative('bristle_gossip: tolerance', tolerance)
  kernel, bias = tuple(kernel), tuple(bias)

  def init_fn(params):
    del params
    return BristleState(jnp.zeros([], jnp.int32), jax.random.key(seed))

  def update_fn(updates, state, params=None, *, features=None, labels=None, **extra):
    del extra
    need_params(params, 'bristle_gossip')
    if features is None or labels is None:
      raise ValueError('bristle_gossip needs the peer\'s test set: call update(..., features=..., labels=...)')
    key = jax.random.fold_in(state.key, state.count)
    k_attack, k_explore = jax.random.split(key)
    me = axis.worker_index(axis_name)
    half = jax.tree.map(lambda p, u: p + u.astype(p.dtype), params, updates)
    head = {'kernel': _get(half, kernel), 'bias': _get(half, bias)}
    sent = head if attack is None else replace_faulty(head, attack, axis_name=axis_name, f=f, key=k_attack,
                                                      keep_own=keep_own)
    received, senders, weights = neighbours(sent, topology, axis_name)
    new = bristle_integrate(head, received, features, labels, exploit=exploit, explore=explore, tolerance=tolerance,
                            key=jax.random.fold_in(k_explore, me), present=(senders != me) & (weights > 0))
    new = _set(_set(half, kernel, new['kernel'].astype(head['kernel'].dtype)), bias,
               new['bias'].astype(head['bias'].dtype))
    out = jax.tree.map(lambda m, p: (m - p).astype(p.dtype), new, params)
    return out, BristleState(state.count + 1, state.key)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def bristle_dsgd(learning_rate: optax.ScalarOrSchedule, *, axis_name: str, exploit: int, explore: int = 0,
                 tolerance: float = 0.0, topology: Topology | None = None, kernel: Sequence[Any] = ('kernel',),
                 bias: Sequence[Any] = ('bias',), f: int = 0, attack=None, keep_own: bool | jax.Array = False,
                 seed: int = 0, momentum: float | None = None) -> optax.GradientTransformationExtraArgs:
  """Bristle (Verbraeken, de Vos and Pouwelse, arXiv 2110.11006) on the worker axis: a local SGD step on the
  head, then :func:`bristle_gossip` (distance prioritising, then class-wise integration; conventions in the module
  docstring). ``optax.chain(optax.sgd(learning_rate, momentum), bristle_gossip(...))``.

  Args:
    learning_rate: the local step size (or schedule).
    axis_name: the worker axis.
    exploit, explore, tolerance, topology, kernel, bias, f, attack, keep_own, seed: see :func:`bristle_gossip`.
    momentum: optional local heavy-ball momentum (optax.sgd convention).

  Returns:
    A ``GradientTransformationExtraArgs`` for one worker: ``update(grads, state, params, features=, labels=)``.
  """
  return sgd_then('bristle_dsgd', learning_rate, momentum,
                  lambda: bristle_gossip(axis_name=axis_name, exploit=exploit, explore=explore, tolerance=tolerance,
                                         topology=topology, kernel=kernel, bias=bias, f=f, attack=attack,
                                         keep_own=keep_own, seed=seed))
