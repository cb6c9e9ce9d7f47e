"""Byzantine attacks: what the f faulty workers send, computed from the honest workers' vectors.

An attack is a pure function of the stacked honest vectors (leading axis n - f), returning the one vector that
every faulty worker sends (ByzFL's convention: one attack vector replicated f times)::

    attack(honest, *, f, key) -> vector     # or None: the faulty workers keep their own (label flipping)

:func:`byzantine` turns an attack into an optax transform on the worker axis: it gathers the updates, computes the
attack from the honest ones and replaces the update of each faulty worker -- the last f indices of the axis --
by it. Chain it before :func:`decentral.aggregate`::

    optax.chain(decentral.byzantine(decentral.a_little_is_enough, axis_name='workers', f=3),
                decentral.aggregate(decentral.trimmed_mean, axis_name='workers', f=3),
                optax.sgd(0.1))

Label flipping acts on the data (:func:`flip_labels`): its attack function returns None so that the faulty
workers send the update they computed on flipped labels. :func:`strongest` line-searches the scale of an attack
family (ALIE, IPM) to push a given rule furthest from the honest mean (ByzFL's ``Optimal_*`` attacks). The attacks
by name are in :data:`decentral.registry.attacks` (``decentral.get_attack(name, **kwargs)``).

>>> import jax.numpy as jnp
>>> honest = jnp.array([[1., 2., 3.], [4., 5., 6.], [7., 8., 9.]])
>>> a_little_is_enough(honest, f=1)  # ByzFL's ALIE(1.5) fixture
Array([ 8.5,  9.5, 10.5], dtype=float32)
>>> inner_product_manipulation(honest, f=1)  # ByzFL's IPM(2) fixture
Array([ -8., -10., -12.], dtype=float32)
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from decentral import axis, checks
from decentral.stacked import col_sums, compute_dtype, leaf_rows

PyTree = Any
Attack = Callable[..., Any]


def honest_mean(honest):
  """Coordinate-wise mean of the honest vectors (a matmul: XLA's CPU float reductions are slow)."""
  return jax.tree.map(lambda x: (col_sums(leaf_rows(x)) / x.shape[0]).reshape(x.shape[1:]), honest)


def honest_std(honest):
  """Coordinate-wise standard deviation, ddof=1."""
  def std(x, m):
    centred = leaf_rows(x) - m.reshape(-1)
    return jnp.sqrt(col_sums(centred * centred) / (x.shape[0] - 1)).reshape(x.shape[1:])
  return jax.tree.map(std, honest, honest_mean(honest))


def sign_flipping(honest: PyTree, *, f: int = 0, key: jax.Array | None = None) -> PyTree:
  r"""Sign flipping (Allen-Zhu et al. 2020): :math:`a = -\bar x`, the negated honest mean (ByzFL)."""
  del f, key
  return jax.tree.map(jnp.negative, honest_mean(honest))


def inner_product_manipulation(honest: PyTree, *, f: int = 0, key: jax.Array | None = None,
                               tau: float = 2.0) -> PyTree:
  r"""Inner-product manipulation (Xie et al. 2020, arXiv 1903.03936): :math:`a = -\tau \bar x` (ByzFL, tau=2)."""
  del f, key
  return jax.tree.map(lambda m: -tau * m, honest_mean(honest))


def fall_of_empires(honest: PyTree, *, f: int = 0, key: jax.Array | None = None,
                    epsilon: float = 1.1) -> PyTree:
  r"""Fall of empires (Xie et al. 2020, arXiv 1903.03936) as in the MoNNA code: :math:`a = \bar x + \epsilon(-\bar x)
  = (1-\epsilon)\bar x`.

  The same family as IPM (IPM(tau) = FOE(1 + tau)); the default epsilon = 1.1 sends :math:`-0.1\bar x`, the
  paper's small-epsilon attack that slips under median- and Krum-type rules.
  """
  del f, key
  return jax.tree.map(lambda m: (1.0 - epsilon) * m, honest_mean(honest))


def a_little_is_enough(honest: PyTree, *, f: int = 0, key: jax.Array | None = None, tau: float = 1.5) -> PyTree:
  r"""A little is enough, ALIE (Baruch et al. 2019, arXiv 1902.06156): :math:`a = \bar x + \tau \sigma`, sigma the
  coordinate-wise standard deviation of the honest vectors (ddof=1, as ByzFL and the MoNNA code; tau=1.5 ByzFL).

  Needs at least two honest vectors.
  """
  del f, key
  return jax.tree.map(lambda m, s: m + tau * s, honest_mean(honest), honest_std(honest))


def mimic(honest: PyTree, *, f: int = 0, key: jax.Array | None = None, index: int = 0) -> PyTree:
  """Mimic (Karimireddy et al. 2022, arXiv 2006.09365), ByzFL's fixed form: copy honest worker ``index``.

  Overrepresents one honest worker, which hurts under heterogeneous data. (The heuristic variant of the MoNNA code
  that learns a direction is not implemented.)
  """
  del f, key
  return jax.tree.map(lambda x: x[index].astype(compute_dtype(x)), honest)


def gaussian(honest: PyTree, *, f: int = 0, key: jax.Array | None = None, mu: float = 0.0,
             sigma: float = 1.0) -> PyTree:
  """Gaussian noise N(mu, sigma^2) of the honest vectors' shape (ByzFL); drawn from ``key``."""
  del f
  if key is None:
    raise ValueError('gaussian: key is required')
  leaves, treedef = jax.tree.flatten(honest_mean(honest))
  noise = [mu + sigma * jax.random.normal(jax.random.fold_in(key, i), x.shape, x.dtype)
           for i, x in enumerate(leaves)]
  return jax.tree.unflatten(treedef, noise)


def infinite(honest: PyTree, *, f: int = 0, key: jax.Array | None = None) -> PyTree:
  """Every coordinate +inf (ByzFL's ``Inf``)."""
  del f, key
  return jax.tree.map(lambda m: jnp.full_like(m, jnp.inf), honest_mean(honest))


def not_a_number(honest: PyTree, *, f: int = 0, key: jax.Array | None = None) -> PyTree:
  """Every coordinate NaN (the MoNNA code's ``nan`` attack)."""
  del f, key
  return jax.tree.map(lambda m: jnp.full_like(m, jnp.nan), honest_mean(honest))


def label_flipping(honest: PyTree, *, f: int = 0, key: jax.Array | None = None) -> None:
  """Label flipping acts on data: faulty workers train on :func:`flip_labels` and send their own update (None)."""
  del honest, f, key
  return None


def flip_labels(labels: jax.Array, num_classes: int) -> jax.Array:
  """y -> num_classes - 1 - y, the flip of ByzFL and the MoNNA code."""
  return num_classes - 1 - labels


def inject(attack: Attack, honest: PyTree, *, f: int, key: jax.Array | None = None) -> PyTree:
  """The n = n_h + f stacked vectors a rule sees: the honest ones, then f copies of ``attack(honest)``."""
  if f == 0:
    return honest
  vector = attack(honest, f=f, key=key)
  if vector is None:
    raise ValueError('inject: this attack acts on data (label flipping); there is no vector to inject')
  return jax.tree.map(
      lambda h, a: jnp.concatenate([h.astype(a.dtype), jnp.broadcast_to(a, (f,) + a.shape)], axis=0),
      honest, vector)


def line_maximize(objective: Callable[[jax.Array], jax.Array], *, evals: int = 20, start: float = 0.0,
                  delta: float = 10.0, ratio: float = 0.8) -> jax.Array:
  """ByzFL's expansion/contraction line search for the scale maximising ``objective`` (``evals`` evaluations).

  Expansion: from ``start``, try ``best + delta``, doubling delta after each improvement; on the first failure
  multiply delta by ``ratio`` and switch to contraction: try ``best + delta`` and multiply delta by ``ratio``
  after every evaluation. Strict improvement is needed to move (ties keep the earlier point). Jittable (a
  ``fori_loop`` of fixed length).
  """
  checks.positive_int(evals, 'line_maximize: evals')
  if not 0.5 < ratio < 1:
    raise ValueError(f'line_maximize: ratio must be in (0.5, 1), got {ratio!r}')
  if delta == 0:
    raise ValueError('line_maximize: delta must be nonzero')
  x0 = jnp.asarray(start, jnp.result_type(float))
  y0 = objective(x0)
  # Give the carry y0's type (under shard_map it varies over the worker axis) by a data dependence on it.
  x0 = jnp.where(jnp.isnan(y0) & False, y0, x0).astype(x0.dtype)

  def body(_, carry):
    best_x, best_y, step, expanding = carry
    prop = best_x + step
    y = objective(prop)
    better = y > best_y
    step = jnp.where(expanding & better, 2.0 * step, ratio * step)
    return (jnp.where(better, prop, best_x), jnp.where(better, y, best_y), step, expanding & better)

  init = (x0, y0, x0 * 0 + delta, x0 == x0)
  return lax.fori_loop(0, evals - 1, body, init)[0]


FAMILIES = {'a_little_is_enough': a_little_is_enough, 'inner_product_manipulation': inner_product_manipulation}


def strongest(family: str, rule, *, evals: int = 20, start: float = 0.0, delta: float = 10.0,
              ratio: float = 0.8) -> Attack:
  r"""The attack of ``family`` whose scale tau is line-searched against ``rule`` each round (ByzFL ``Optimal_*``).

  .. math:: \tau^\star = \arg\max_\tau \|\mathrm{rule}(x_H \cup f\times a_\tau(x_H)) - \bar x_H\|

  by :func:`line_maximize` (ByzFL defaults: 20 evaluations from 0, delta 10, ratio 0.8). ``rule`` is anything
  with the rule signature, pre-aggregations included (use :func:`decentral.preaggregated`); it receives the
  attack's ``f`` and ``key``.

  Args:
    family: ``'a_little_is_enough'`` or ``'inner_product_manipulation'``.
    rule: the aggregation rule attacked.
    evals, start, delta, ratio: line-search settings.

  Returns:
    An attack ``(honest, *, f, key) -> vector``.
  """
  if family not in FAMILIES:
    raise KeyError(f'strongest: family must be one of {sorted(FAMILIES)}, got {family!r}')
  make = FAMILIES[family]

  def attack(honest, *, f=0, key=None):
    target = honest_mean(honest)

    def objective(tau):
      vec = make(honest, f=f, tau=tau)
      stacked = jax.tree.map(lambda h, a: jnp.concatenate([h.astype(a.dtype), jnp.broadcast_to(a, (f,) + a.shape)]),
                             honest, vec)
      agg = rule(stacked, f=f, key=key)
      return jnp.sqrt(sum(jnp.vdot(a - t, a - t) for a, t in zip(jax.tree.leaves(agg), jax.tree.leaves(target))))

    tau = line_maximize(objective, evals=evals, start=start, delta=delta, ratio=ratio)
    return make(honest, f=f, tau=tau)

  return attack


def optimal_a_little_is_enough(rule, **kwargs) -> Attack:
  """ALIE with tau line-searched against ``rule`` (ByzFL's ``Optimal_ALittleIsEnough``)."""
  return strongest('a_little_is_enough', rule, **kwargs)


def optimal_inner_product_manipulation(rule, **kwargs) -> Attack:
  """IPM with tau line-searched against ``rule`` (ByzFL's ``Optimal_InnerProductManipulation``)."""
  return strongest('inner_product_manipulation', rule, **kwargs)


class ByzantineState(NamedTuple):
  count: jax.Array
  key: jax.Array


def replace_faulty(tree: PyTree, attack: Attack, *, axis_name: str, f: int, key: jax.Array | None,
                   keep_own: bool | jax.Array = False) -> PyTree:
  """What this worker sends: its own ``tree`` if honest, else the attack on the gathered honest trees.

  The faulty workers are the last f indices of ``axis_name``. ``keep_own`` (static or traced bool) makes the faulty
  workers send their own tree (label flipping, or a batch of experiment configurations that mixes it in).
  """
  n = axis.axis_size(axis_name)
  if not checks.is_int(f) or not 0 <= f < n:
    raise ValueError(f'f must be an integer in [0, n={n}) faulty workers, got {f!r}')
  if f == 0:
    return tree
  stacked = axis.all_gather(tree, axis_name)
  honest = jax.tree.map(lambda x: x[:n - f], stacked)
  vector = attack(honest, f=f, key=key)
  if vector is None:
    return tree
  faulty = (axis.worker_index(axis_name) >= n - f) & ~jnp.asarray(keep_own)
  return jax.tree.map(lambda own, a: jnp.where(faulty, a.astype(own.dtype), own), tree, vector)


def byzantine(attack: Attack, *, axis_name: str, f: int, seed: int = 0,
              keep_own: bool | jax.Array = False) -> optax.GradientTransformation:
  """The optax transform making the last f workers of ``axis_name`` send ``attack(honest updates)``.

  Args:
    attack: an attack ``(honest, *, f, key) -> vector | None``.
    axis_name: the worker axis.
    f: number of faulty workers (the last f indices), 0 <= f < n.
    seed: seeds the key shared by all workers (randomised attacks), folded with the round count.
    keep_own: if true the faulty workers keep their own update (see :func:`replace_faulty`).

  Returns:
    A ``GradientTransformation``; honest workers' updates pass through unchanged.

  >>> import jax.numpy as jnp
  >>> from decentral import axis
  >>> tx = byzantine(sign_flipping, axis_name='workers', f=1)
  >>> axis.run(lambda g: tx.update(g, tx.init(g))[0], 4)(jnp.arange(4.0)[:, None])[:, 0]
  Array([ 0.,  1.,  2., -1.], dtype=float32)
  """
  checks.non_negative_int(f, 'byzantine: f')

  def init_fn(params):
    del params
    return ByzantineState(jnp.zeros([], jnp.int32), jax.random.key(seed))

  def update_fn(updates, state, params=None):
    del params
    key = jax.random.fold_in(state.key, state.count)
    out = replace_faulty(updates, attack, axis_name=axis_name, f=f, key=key, keep_own=keep_own)
    return out, ByzantineState(state.count + 1, state.key)

  return optax.GradientTransformation(init_fn, update_fn)
