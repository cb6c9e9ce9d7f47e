"""The aggregation transform: a rule applied across the worker axis, and the rule contract.

A rule is a pure function of the stacked updates of the n workers (a pytree whose leaves have a leading axis of
size n) returning one update of the input's shape::

    rule(stacked, *, f, key) -> aggregate

``f`` is the number of faulty workers the rule must tolerate and ``key`` a PRNG key shared by all workers (so
randomised rules agree everywhere). A rule that keeps state across rounds (centered clipping) is a
:class:`StatefulRule`. :func:`aggregate` wraps either as an optax transform for one worker: it gathers every
worker's update along ``axis_name``, applies the rule identically on each worker and returns the aggregate, so
it chains with any optax optimizer and runs under vmap, shard_map and pmap (:mod:`decentral.axis`).

>>> import jax, jax.numpy as jnp, optax
>>> from decentral import axis
>>> tx = optax.chain(aggregate(mean, axis_name='workers'), optax.sgd(1.0))
>>> def step(g):
...   u, _ = tx.update(g, tx.init(g))
...   return u
>>> axis.run(step, 4)(jnp.arange(4.0)[:, None])
Array([[-1.5],
       [-1.5],
       [-1.5],
       [-1.5]], dtype=float32)
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import optax

from decentral import axis, checks
from decentral import stacked as stacked_lib
from decentral.robust.passes import FUSED_SUM_MAX, sum_of_rows
from optim import checks as optim_checks

PyTree = Any


class Rule(Protocol):

  def __call__(self, stacked: PyTree, *, f: int, key: jax.Array) -> PyTree:
    ...


class StatefulRule(NamedTuple):
  """A rule with state carried across rounds: ``init(update) -> s`` and ``apply(stacked, s, *, f, key)``.

  ``apply`` returns ``(aggregate, new_state)``; ``init`` receives one worker's update (the aggregate's shape), or
  the stacked updates of all workers when ``stacked_init`` is True (state with one row per worker, e.g. the
  histories of :func:`decentral.sybilwall`; :func:`aggregate` then gathers them in ``init``).
  """

  init: Callable[[PyTree], PyTree]
  apply: Callable[..., tuple[PyTree, PyTree]]
  stacked_init: bool = False


class AggregateState(NamedTuple):
  count: jax.Array  # rounds so far; folded into the key so every round draws fresh, shared randomness
  key: jax.Array
  rule_state: PyTree


def mean(stacked: PyTree, *, f: int = 0, key: jax.Array | None = None) -> PyTree:
  """The arithmetic mean over workers, (1/n) sum_i x_i. Not robust: one worker moves it arbitrarily far.

  No ties to break; a NaN or inf from any worker propagates to the output.
  """
  del f, key

  def leaf_mean(x):
    # A fused sum of the rows for a few workers, the product (1/n, ..., 1/n) @ X for many (passes.sum_of_rows):
    # XLA's CPU float reductions over the worker axis are scalar loops, ~100x slower.
    rs = stacked_lib.leaf_rows(x)
    n = x.shape[0]
    if n > FUSED_SUM_MAX:
      return jnp.matmul(jnp.full((n,), 1.0 / n, rs.dtype), rs, precision=stacked_lib.HIGHEST).reshape(x.shape[1:])
    return (sum_of_rows(rs) / n).reshape(x.shape[1:])

  return jax.tree.map(leaf_mean, stacked)


def one_round(rule: Rule | StatefulRule) -> Rule:
  """``rule`` as a function of one round's stacked updates: a :class:`StatefulRule` applied once from its
  initial state (its state discarded), any other rule returned as it is. For tests and benchmarks that call every
  registered rule the same way; training carries the state through :func:`aggregate`.

  >>> import jax.numpy as jnp
  >>> from decentral import centered_clipping
  >>> one_round(centered_clipping(tau=10.0, iters=3))(jnp.ones((4, 2)), f=1, key=None)
  Array([1., 1.], dtype=float32)
  """
  if not isinstance(rule, StatefulRule):
    return rule

  def apply(stacked: PyTree, *, f: int = 0, key: jax.Array | None = None) -> PyTree:
    state = rule.init(stacked if rule.stacked_init else jax.tree.map(lambda x: x[0], stacked))
    return rule.apply(stacked, state, f=f, key=key)[0]

  return apply


def aggregate(rule: Rule | StatefulRule, *, axis_name: str, f: int = 0, seed: int = 0
              ) -> optax.GradientTransformation:
  """The optax transform that replaces each worker's update by ``rule`` applied to all workers' updates.

  Args:
    rule: an aggregation rule ``rule(stacked, *, f, key)`` or a :class:`StatefulRule`.
    axis_name: the worker axis the updates are gathered along.
    f: number of faulty workers to tolerate; checked against the axis size, 0 <= f < n/2.
    seed: seeds the key shared by all workers (the same on every worker by construction).

  Returns:
    A ``GradientTransformation`` for one worker; every worker ends with the same aggregate.
  """
  with optim_checks.owner('aggregate') as name:
    checks.non_negative_int(f, 'f')
  stateful = isinstance(rule, StatefulRule)

  def init_fn(params):
    if stateful and rule.stacked_init:
      rule_state = rule.init(axis.all_gather(params, axis_name))
    else:
      rule_state = rule.init(params) if stateful else ()
    return AggregateState(jnp.zeros([], jnp.int32), jax.random.key(seed), rule_state)

  def update_fn(updates, state, params=None):
    del params
    n = axis.axis_size(axis_name)
    if 2 * f >= n:
      raise ValueError(f'f={f} faulty workers need f < n/2, but the axis {axis_name!r} has n={n} workers')
    stacked = axis.all_gather(updates, axis_name)
    key = jax.random.fold_in(state.key, state.count)
    if stateful:  # the state a rule would start from on these updates must be the one it carries
      fresh = jax.eval_shape(rule.init, stacked if rule.stacked_init else updates)
      optim_checks.same_structure(fresh, state.rule_state, f'{name} (the state of its stateful rule)')
      agg, rule_state = rule.apply(stacked, state.rule_state, f=f, key=key)
    else:
      agg, rule_state = rule(stacked, f=f, key=key), state.rule_state
    agg = jax.tree.map(lambda a, u: a.astype(u.dtype), agg, updates)
    return agg, AggregateState(state.count + 1, state.key, rule_state)

  return optax.GradientTransformation(init_fn, update_fn)

