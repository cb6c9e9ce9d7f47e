"""MoDeST: serverless federated rounds by decentralized sampling, simulated on client clocks and replayed exactly.

de Vos, Dhasade, Kermarrec, Lavoie, Pouwelse, Sharma, "Bridging the Gap between Federated and Decentralized
Learning with Decentralized Sampling", arXiv 2302.13837 v1 (v2 of the same id is retitled "Decentralized Learning
Made Practical with Client Sampling", system name Plexus). Every node derives the same sample from a hash, so no
server is needed:

- **sample** (official code ``accdfl/core/sample_manager.py``): sort the live nodes by ``md5(f'{node}-{k}')`` and
  keep the first s; they are round k's **trainers**; the first a of them are round k's **aggregators**
  (:func:`sample`, :func:`aggregators`). Node ids stand for the code's public keys.
- **round k**: the trainers S_k fetch the current model m_k from the node that produced it, train, and send their
  model to the a aggregators of round k + 1; an aggregator proceeds as soon as it holds ceil(sf s) models (the
  code's ``len(models) >= sample_size * success_fraction``) and averages them **unweighted** (the code's
  ``average_models``):  m_{k+1} = (1 / |C_k|) sum_{j in C_k} train_j(m_k). FedAvg's weighting by the local data
  sizes n_j, m_{k+1} = sum_{j in C_k} n_j train_j(m_k) / sum_{j in C_k} n_j, is one argument away
  (``replay(..., weights=n)``).
- **timeouts and churn**: an aggregator still short of ceil(sf s) models at ``start + timeout`` aggregates what it
  has; with none (or with no live aggregator) the round fails and round k + 1 restarts from m_k at
  ``start + timeout``, so churn never deadlocks.

Conventions of this simulator (where the paper leaves a choice open):

- the membership view is exact: the live set at a round's start (the gossiped view with join/leave timestamps in
  the paper) is the same on every node; the aggregators of round k + 1 are drawn from that same view;
- with a > 1 aggregators the round's model is the one of the **first** aggregator to finish (ties: lowest id);
  every aggregator sees the same arrivals, so they agree unless one of them leaves;
- the trainers fetch from the model's producer (its bytes are charged to it even if it has left since: another
  aggregator of its round then serves the same model);
- a trainer's fetch, training and send take ``clock.duration(node, task)`` (compute + network, the clock's round
  trip); a trainer that drops (``clock.drops``) or is offline during its task sends nothing.

Bytes (:meth:`Trace.ledger`, :class:`decentral.ledger.Ledger`): per round, the model's producer sends P bytes to
each trainer (round 0: every node already holds m_0), each trainer that finishes sends P to each of the a
aggregators (late models too); received bytes are counted alongside.

The schedule does not depend on the numbers, so :func:`simulate` records a :class:`Trace` and :func:`replay` runs
jitted training and aggregation along it; the same trace (or its JSON) gives the same parameters bit for bit.

>>> sample(0, range(5), 2) == sample(0, [4, 3, 2, 1, 0], 2)   # a function of (round, live set) only
True
>>> from decentral.sim.clocks import Clock
>>> trace = simulate(Clock(6), sample_size=3, num_aggregators=1, rounds=2, timeout=5.0, model_bytes=8)
>>> [(r.start, r.end, len(r.contributors)) for r in trace.rounds]
[(0.0, 1.0, 3), (1.0, 2.0, 3)]
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from decentral import checks
from decentral.ledger import Ledger
from decentral.sim.clocks import Clock

PyTree = Any


def sample(round_index: int, live: Iterable[int], size: int) -> list[int]:
  """Round ``round_index``'s trainers: the live nodes sorted by ``md5(f'{node}-{round}')``, the first ``size``.

  The official code's rule (``SampleManager.get_sample_for_round``); a pure function of (round, live set), so
  every node with the same view computes the same sample, in the same order.
  """
  nodes = sorted({int(i) for i in live})
  keyed = sorted(nodes, key=lambda i: hashlib.md5(f'{i}-{int(round_index)}'.encode()).digest())
  return keyed[:size]


def aggregators(round_index: int, live: Iterable[int], sample_size: int, num_aggregators: int) -> list[int]:
  """Round ``round_index``'s aggregators: the first ``num_aggregators`` of its sample.

  The official code's ``get_aggregators_for_round``; in MoDeST they aggregate the models of round
  ``round_index - 1``'s trainers and serve the result to round ``round_index``'s.
  """
  return sample(round_index, live, sample_size)[:num_aggregators]


@dataclasses.dataclass(frozen=True)
class Round:
  """One MoDeST round.

  ``trainers`` trained on the model produced by ``source`` (-1: the initial model every node holds), their
  ``tasks``-th tasks; ``finished`` are those whose model reached the aggregators; ``contributors`` (sorted) are
  averaged by ``producer`` (-1: the round failed, the model is unchanged) at ``end``.
  """

  index: int
  start: float
  end: float
  source: int
  trainers: tuple[int, ...]
  tasks: tuple[int, ...]
  aggregators: tuple[int, ...]
  finished: tuple[int, ...]
  contributors: tuple[int, ...]
  producer: int

  @property
  def failed(self) -> bool:
    return self.producer < 0


@dataclasses.dataclass
class Trace:
  """A recorded MoDeST run: its rounds and the protocol parameters needed to count bytes."""

  num_nodes: int
  sample_size: int
  num_aggregators: int
  model_bytes: int
  rounds: list[Round]

  def wall_clock(self) -> float:
    return self.rounds[-1].end if self.rounds else 0.0

  def ledger(self) -> Ledger:
    """Bytes sent and received per node, round by round (see the module docstring)."""
    led = Ledger(self.num_nodes)
    p = self.model_bytes
    for r in self.rounds:
      sent = np.zeros(self.num_nodes, np.int64)
      received = np.zeros(self.num_nodes, np.int64)
      if r.source >= 0:
        sent[r.source] += p * len(r.trainers)
        received[list(r.trainers)] += p
      for j in r.finished:
        sent[j] += p * len(r.aggregators)
      for g in r.aggregators:
        received[g] += p * len(r.finished)
      led.record(r.index, sent, received)
    return led

  def to_json(self) -> str:
    return json.dumps({'num_nodes': self.num_nodes, 'sample_size': self.sample_size,
                       'num_aggregators': self.num_aggregators, 'model_bytes': self.model_bytes,
                       'rounds': [dataclasses.astuple(r) for r in self.rounds]})

  @classmethod
  def from_json(cls, text: str) -> 'Trace':
    d = json.loads(text)
    rounds = [Round(int(i), float(s), float(e), int(src), tuple(t), tuple(k), tuple(a), tuple(f), tuple(c), int(p))
              for i, s, e, src, t, k, a, f, c, p in d['rounds']]
    return cls(int(d['num_nodes']), int(d['sample_size']), int(d['num_aggregators']), int(d['model_bytes']), rounds)


class _Liveness:
  """Who is online when: joins from the clock, scheduled offline intervals, and drops during training tasks."""

  def __init__(self, clock: Clock, offline: Sequence[tuple[int, float, float]]):
    self.clock = clock
    self.down: dict[int, list[tuple[float, float]]] = {}
    for node, begin, end in offline:
      self.add(int(node), float(begin), float(end))

  def add(self, node, begin, end):
    self.down.setdefault(node, []).append((begin, end))

  def live(self, node: int, t: float) -> bool:
    if t < self.clock.join_time(node):
      return False
    return not any(b <= t < e for b, e in self.down.get(node, ()))

  def live_during(self, node: int, t0: float, t1: float) -> bool:
    if t0 < self.clock.join_time(node):
      return False
    return not any(b < t1 and t0 < e for b, e in self.down.get(node, ()))

  def live_set(self, t: float) -> list[int]:
    return [i for i in range(self.clock.num_clients) if self.live(i, t)]


def simulate(clock: Clock, *, sample_size: int, num_aggregators: int = 1, success_fraction: float = 1.0,
             timeout: float, rounds: int, model_bytes: int = 0,
             offline: Sequence[tuple[int, float, float]] = ()) -> Trace:
  """Records ``rounds`` MoDeST rounds on the clock's times, dropouts and joins (see the module docstring).

  Args:
    clock: node task durations, dropouts (``clock.drops``: the node leaves during its task and is back
      ``rejoin_after`` after the task would have ended) and join times.
    sample_size: s, trainers per round.
    num_aggregators: a <= s, the first a of the next round's sample.
    success_fraction: sf in (0, 1]; an aggregator proceeds after ceil(sf s) models.
    timeout: after ``start + timeout`` an aggregator proceeds with what it has (or the round fails).
    rounds: how many rounds to record (failed ones included).
    model_bytes: P, the size of one model on the wire, for :meth:`Trace.ledger`.
    offline: scheduled churn, ``(node, leave_time, return_time)`` intervals (``math.inf``: never returns).
  """
  n = clock.num_clients
  checks.positive_int(sample_size, 'modest: sample_size')
  checks.positive_int(num_aggregators, 'modest: num_aggregators')
  checks.positive_int(rounds, 'modest: rounds')
  checks.non_negative_int(model_bytes, 'modest: model_bytes')
  checks.fraction(success_fraction, 'modest: success_fraction')
  checks.positive_finite(timeout, 'modest: timeout')
  if sample_size > n or num_aggregators > sample_size:
    raise ValueError(f'modest: need num_aggregators <= sample_size <= num_nodes ({n}), '
                     f'got {num_aggregators} and {sample_size}')
  needed = math.ceil(success_fraction * sample_size - 1e-9)
  alive = _Liveness(clock, offline)
  task = [0] * n
  source, t, out = -1, 0.0, []
  for k in range(rounds):
    view = alive.live_set(t)
    trainers = sample(k, view, sample_size)
    aggs = aggregators(k + 1, view, sample_size, num_aggregators)
    tasks, arrivals = [], []
    for j in trainers:
      kj = task[j]
      task[j] += 1
      tasks.append(kj)
      done = t + clock.duration(j, kj)
      if clock.drops(j, kj):
        alive.add(j, t, done + clock.rejoin_after)
      elif alive.live_during(j, t, done):
        arrivals.append((done, j))
    arrivals.sort()
    finished = tuple(j for _, j in arrivals)
    deadline = t + timeout
    best = None   # (time, aggregator, contributors)
    for g in aggs:
      if len(arrivals) >= needed and arrivals[needed - 1][0] <= deadline:
        when = arrivals[needed - 1][0]
        got = [j for d, j in arrivals if d <= when]
      else:
        when, got = deadline, [j for d, j in arrivals if d <= deadline]
      if got and alive.live_during(g, t, when) and (best is None or (when, g) < best[:2]):
        best = (when, g, tuple(sorted(got)))
    if best is None:
      out.append(Round(k, t, deadline, source, tuple(trainers), tuple(tasks), tuple(aggs), finished, (), -1))
      t = deadline
    else:
      when, g, got = best
      out.append(Round(k, t, float(when), source, tuple(trainers), tuple(tasks), tuple(aggs), finished, got, g))
      t, source = float(when), g
  return Trace(n, sample_size, num_aggregators, int(model_bytes), out)


def replay(trace: Trace, params: PyTree, train_fn: Callable[[PyTree, Any, Any], PyTree], *,
           on_round: Callable[[Round, PyTree], Any] | None = None,
           weights: Sequence[float] | np.ndarray | None = None) -> PyTree:
  """Runs the numbers along a trace: m_{k+1} = mean_{j in C_k} train_fn(m_k, j, task_j); failed rounds keep m_k.

  ``train_fn(params, node, task)`` is jitted here with ``node`` and ``task`` as int32 scalars (one compilation);
  the mean over the contributors is one jitted masked mean over a fixed ``[sample_size, ...]`` stack: unweighted
  (the MoDeST code's), or, with ``weights`` (n,) non-negative (e.g. the nodes' data sizes, FedAvg's weighting),
  :math:`\sum_{j \in C_k} w_j\, \mathrm{train}_j(m_k) / \sum_{j \in C_k} w_j`.
  """
  import jax
  import jax.numpy as jnp
  if weights is not None:
    weights = np.asarray(weights, np.float64)
    if weights.shape != (trace.num_nodes,) or not np.all(np.isfinite(weights)) or np.any(weights < 0):
      raise ValueError(f'replay: weights must be {trace.num_nodes} finite non-negative numbers (one per node), got '
                       f'shape {weights.shape}')
  train = jax.jit(train_fn)

  @jax.jit
  def average(stacked, mask):
    w = mask / jnp.sum(mask)
    return jax.tree.map(lambda x: jnp.tensordot(w.astype(x.dtype), x, axes=1), stacked)

  s = trace.sample_size
  for r in trace.rounds:
    if not r.failed:
      task_of = dict(zip(r.trainers, r.tasks))
      models = [train(params, jnp.int32(j), jnp.int32(task_of[j])) for j in r.contributors]
      models += [jax.tree.map(jnp.zeros_like, params)] * (s - len(models))
      stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *models)
      mask = np.zeros(s, np.float64)
      mask[:len(r.contributors)] = 1.0 if weights is None else weights[list(r.contributors)]
      params = average(stacked, jnp.asarray(mask))
    if on_round is not None:
      on_round(r, params)
  return params
