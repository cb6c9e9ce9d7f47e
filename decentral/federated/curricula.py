"""Curricula in federated learning: each client's data ordered by a difficulty score and revealed by a pacing function.

Vahidian, Kadaveru, Baek, Wang, Kungurtsev, Chen, Shah, Lin, "When Do Curricula Work in Federated Learning?",
ICCV 2023, arXiv 2212.12712 (no official code found). Each client sorts its examples by a score (the loss of a
scoring model: a pre-trained expert, or the current global model), and at step t draws its batch from the g(t)
first examples of that order, g a pacing function growing from b N_i to N_i (N_i the client's size):

- ``'curriculum'``: easy (low score) first;  ``'anti'``: hard first;  ``'random'``: a random order, still paced
  (a smaller random working set early: not the same as no curriculum);  ``'none'``: the whole data, unpaced.

The pacing functions g_(a, b)(t) are those of Wu, Dyer, Neyshabur, "When Do Curricula Work?" (ICLR 2021, arXiv
2012.03107; code google-research/understanding-curricula), on which the FL paper builds (its exact choice of
family and (a, b) was not re-checked against its text here): with T the total steps,
the full data is reached at step a T, the start is b N (:data:`PACINGS`, :func:`pacing`). Client-level curricula
order the clients themselves by a client score (here the mean example score of the client) and sample each round's
clients among the g_c(t) easiest (:func:`client_probabilities`).

Stated choices where the paper leaves them open (its text could not be checked line by line for this module):
the pacing clock is the caller's (:func:`pacing` takes any step and total, e.g. the round and the number of rounds,
as the experiments do); ties in the score keep the data's order (a stable sort); batches are drawn without
replacement from the working set, masked when it holds fewer than a batch; Wu et al.'s per-class balancing of the
order (``balance_order``) is not applied.

On the round engine (:class:`decentral.federated.Federated`), :func:`curriculum_algorithm` orders each pass over a
client's rows (``Algorithm.order``): the pass has the client's n_i positions, filled by the working set (the g_i(t)
first rows of its order, t the round) shuffled and cycled, so a client takes as many steps as without a curriculum
(Wu et al. keep the number of iterations and grow the subset); with ``client_kind`` set, ``Algorithm.select``
draws the round's clients among the g_c(t) first of the client order.

>>> import jax.numpy as jnp
>>> order(jnp.array([0.3, 0.1, 0.2, 9.0]), 'curriculum', count=3).tolist()   # the padded row (9.0) goes last
[1, 2, 0, 3]
>>> [int(pacing('linear', t, 10, 100, a=0.5, b=0.2)) for t in (0, 1, 5, 9)]
[20, 36, 100, 100]
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from decentral.federated import rounds
from decentral.federated.sampling import Selection
from optim import checks as optim_checks

PyTree = Any
PACINGS = ('linear', 'quad', 'root', 'step', 'exp', 'log')
ORDERINGS = ('curriculum', 'anti', 'random', 'none')
_C = 10.0  # the constant of Wu et al.'s exp and log pacings


def pacing(kind: str, step, total_steps, total_data, *, a: float, b: float, minimum: int = 1) -> jax.Array:
  """How many of the ordered examples are available at ``step``: Wu et al.'s g_(a, b), floored and clipped.

  With N = ``total_data`` and T = ``total_steps``, ``bN = b N``, ``aT = a T``::

      linear  bN + (N - bN) t / aT              quad  bN + (N - bN) (t / aT)^2       root  bN + (N - bN) (t / aT)^(1/2)
      step    bN + N floor(t / aT)              exp   bN + (N - bN) (e^(10 t / aT) - 1) / (e^10 - 1)
      log     bN + (N - bN) (1 + log(t / aT + e^-10) / 10)

  then ``floor`` and ``clip`` to ``[min(minimum, N), N]`` (``minimum`` like the code's floor of one batch).
  ``step`` and ``total_data`` may be arrays (one N per client).
  """
  optim_checks.one_of('pacing: kind', kind, PACINGS)
  optim_checks.check('pacing: a', a, lambda v: v > 0, 'positive')
  optim_checks.check('pacing: b', b, lambda v: 0 <= v <= 1, 'in [0, 1]')
  n = jnp.asarray(total_data, jnp.float32)
  # a T in double precision when it is a Python number: a float32 product misplaces the step pacing's jump.
  full = a * total_steps if optim_checks.is_concrete(total_steps) and np.ndim(total_steps) == 0 else \
      a * jnp.asarray(total_steps, jnp.float32)
  t = jnp.asarray(step, jnp.float32) / full
  start = b * n
  rise = {
      'linear': lambda: (n - start) * t,
      'quad': lambda: (n - start) * t ** 2,
      'root': lambda: (n - start) * jnp.sqrt(t),
      'step': lambda: n * jnp.floor(t),
      'exp': lambda: (n - start) * jnp.expm1(_C * jnp.minimum(t, 1.0)) / np.expm1(_C),  # e^(10 t) overflows
      'log': lambda: (n - start) * (1.0 + jnp.log(t + np.exp(-_C)) / _C),
  }[kind]()
  g = jnp.floor(start + rise)
  return jnp.clip(g, jnp.minimum(minimum, n), n).astype(jnp.int32)


def order(scores: jax.Array, kind: str, *, count=None, key: jax.Array | None = None) -> jax.Array:
  """The permutation of one client's rows for ``kind`` (:data:`ORDERINGS`); rows at or past ``count`` (padding)
  come last, in their own order.

  ``'curriculum'``: ascending score (a stable sort); ``'anti'``: descending; ``'random'``: a uniform permutation
  drawn from ``key``; ``'none'``: the identity.
  """
  optim_checks.one_of('order: kind', kind, ORDERINGS)
  n = scores.shape[0]
  rows = jnp.arange(n)
  real = rows < (n if count is None else count)
  if kind == 'none':
    return rows
  if kind == 'random':
    if key is None:
      raise ValueError("order: kind='random' needs a key")
    keys = jax.random.uniform(key, (n,))
  else:
    keys = scores if kind == 'curriculum' else -scores
  # Padding sorts after every real row: a lexicographic sort on (is padding, key).
  return jnp.lexsort((jnp.where(real, keys, 0.0), ~real))


def orders(scores: jax.Array, counts: jax.Array, kind: str, *, key: jax.Array | None = None) -> jax.Array:
  """:func:`order` for every client: ``scores`` ``[C, max_n]``, ``counts`` ``[C]``; a key per client from ``key``."""
  if kind == 'random':
    if key is None:
      raise ValueError("orders: kind='random' needs a key")
    keys = jax.random.split(key, scores.shape[0])
    return jax.vmap(lambda s, c, k: order(s, kind, count=c, key=k))(scores, counts, keys)
  return jax.vmap(lambda s, c: order(s, kind, count=c))(scores, counts)


def paced_batch(key: jax.Array, permutation: jax.Array, available, batch_size: int) -> tuple[jax.Array, jax.Array]:
  """A batch of ``batch_size`` rows drawn without replacement from the ``available`` first rows of
  ``permutation``: ``(rows, mask)``, ``mask`` False on draws past the working set (fewer rows than a batch)."""
  n = permutation.shape[0]
  if batch_size > n:
    raise ValueError(f'paced_batch: batch_size={batch_size} exceeds the client array size {n}')
  position = jnp.arange(n)
  u = jnp.where(position < available, jax.random.uniform(key, (n,)), 2.0)  # the working set draws first
  picks = jnp.argsort(u)[:batch_size]
  return permutation[picks], picks < available


def example_scores(loss_fn: Callable[[PyTree, Any], jax.Array], params: PyTree, arrays: PyTree) -> jax.Array:
  """The scoring model's loss on every example: ``loss_fn(params, example)`` over ``arrays`` (leaves
  ``[C, max_n, ...]``), as ``[C, max_n]``. Padded rows get a score too; :func:`order` puts them last by count."""
  per_client = jax.vmap(lambda ex: loss_fn(params, ex))
  return jax.vmap(per_client)(arrays)


def client_scores(scores: jax.Array, counts: jax.Array) -> jax.Array:
  """A client's difficulty: the mean score of its real rows (``inf`` for an empty client, which then comes last
  in a curriculum and first in an anti-curriculum)."""
  real = jnp.arange(scores.shape[1])[None, :] < counts[:, None]
  total = jnp.sum(jnp.where(real, scores, 0.0), axis=1)
  return jnp.where(counts > 0, total / jnp.maximum(counts, 1), jnp.inf)


def client_probabilities(scores: jax.Array, kind: str, round_index, total_rounds, *, pacing_kind: str = 'linear',
                         a: float = 0.8, b: float = 0.2, minimum: int = 1,
                         key: jax.Array | None = None) -> jax.Array:
  """Client-level curriculum: each round's clients drawn uniformly from the g_c(t) first clients of the order.

  ``scores`` ``[C]`` (:func:`client_scores`); returns the sampling probabilities ``[C]`` (1 / g_c(t) on the
  working set, 0 elsewhere), for a sampler that draws by given probabilities. ``minimum`` should be at least the
  number of clients a round so that sampling without replacement is possible. ``'none'``: uniform.
  """
  num = scores.shape[0]
  if kind == 'none':
    return jnp.full((num,), 1.0 / num)
  perm = order(jnp.nan_to_num(scores, posinf=jnp.finfo(jnp.float32).max), kind, key=key)
  g = pacing(pacing_kind, round_index, total_rounds, num, a=a, b=b, minimum=minimum)
  rank = jnp.empty((num,), jnp.int32).at[perm].set(jnp.arange(num, dtype=jnp.int32))
  return jnp.where(rank < g, 1.0 / g, 0.0)


def paced_pass(permutation: jax.Array, count, available, key: jax.Array) -> jax.Array:
  """A pass over a client's ``count`` positions drawing only from the ``available`` first rows of ``permutation``:
  a uniform shuffle of the working set, cycled to fill the pass (each working row appears floor or ceil of count /
  available times); positions past ``count`` keep the padding rows."""
  n = permutation.shape[0]
  position = jnp.arange(n)
  available = jnp.maximum(available, 1)
  shuffle = jnp.argsort(jnp.where(position < available, jax.random.uniform(key, (n,)), 2.0))
  cycled = permutation[shuffle[position % available]]
  return jnp.where(position < count, cycled, permutation).astype(jnp.int32)


def curriculum_algorithm(kind: str, *, total_rounds: int, scores: jax.Array | None = None,
                         loss_fn: Callable[[PyTree, Any], jax.Array] | None = None, pacing_kind: str = 'linear',
                         a: float = 0.8, b: float = 0.2, client_kind: str = 'none', client_a: float = 0.8,
                         client_b: float = 0.2, counts: Any = None, seed: int = 0,
                         base: rounds.Algorithm = rounds.FEDAVG) -> rounds.Algorithm:
  """``base`` (FedAvg by default) with each client's data ordered by ``kind`` and paced by the round.

  Scores: ``scores`` ``[N, max_n]`` fixed in advance (e.g. :func:`example_scores` of an expert model), or
  ``loss_fn(params, batch) -> per-example losses`` to score with the round's global model (recomputed each round,
  self-paced). ``'random'`` draws one fixed random order per client (from ``seed`` and the client id; no scores).
  The pacing clock is the round: g_i(t) = :func:`pacing` (``pacing_kind``, t, ``total_rounds``, n_i, a, b).

  ``client_kind`` (:data:`ORDERINGS`): the round's clients are drawn uniformly without replacement among the
  g_c(t) first clients ordered by :func:`client_scores` of ``scores`` and the data's ``counts`` (both needed),
  inclusion m / g_c(t).
  """
  optim_checks.one_of('curriculum_algorithm: kind', kind, ORDERINGS)
  optim_checks.one_of('curriculum_algorithm: client_kind', client_kind, ORDERINGS)
  optim_checks.one_of('curriculum_algorithm: pacing_kind', pacing_kind, PACINGS)
  if kind in ('curriculum', 'anti') and (scores is None) == (loss_fn is None):
    raise ValueError(f'curriculum_algorithm: kind={kind!r} needs exactly one of scores and loss_fn')
  if client_kind != 'none' and (scores is None or counts is None):
    raise ValueError('curriculum_algorithm: a client curriculum needs scores and counts (clients are scored by them)')
  fixed = None if scores is None else jnp.asarray(scores)
  root = jax.random.key(seed)

  def order_fn(data, count, key, ctx):
    if kind == 'none':
      return base.order(data, count, key, ctx)
    if kind == 'random':
      s = jnp.zeros(jax.tree.leaves(data)[0].shape[0])
    else:
      s = fixed[ctx.client] if fixed is not None else loss_fn(ctx.global_params, data)
    perm = order(s, kind, count=count, key=jax.random.fold_in(root, ctx.client))
    g = pacing(pacing_kind, ctx.round, total_rounds, count, a=a, b=b)
    return paced_pass(perm, count, g, key)

  if client_kind == 'none':
    return base._replace(name=f'{base.name}+{kind}', order=order_fn)
  difficulty = client_scores(fixed, jnp.asarray(counts))

  def select_paced_clients(state, sampler, key):
    num, m = sampler.num_clients, sampler.slots
    probs = client_probabilities(difficulty, client_kind, state.round, total_rounds, pacing_kind=pacing_kind,
                                 a=client_a, b=client_b, minimum=m, key=jax.random.fold_in(root, num))
    clients = jax.random.choice(key, num, (m,), replace=False, p=probs).astype(jnp.int32)
    return Selection(clients, jnp.ones(m, bool), jnp.full(m, m / jnp.sum(probs > 0), jnp.float32))

  return base._replace(name=f'{base.name}+{kind}', order=order_fn, select=select_paced_clients)
