"""A server that aggregates client results as they arrive: the schedule, its recorded trace, and its replay.

The timing of a federated run does not depend on the numbers it computes, so it is simulated first and recorded:
:func:`simulate` runs the event queue of :mod:`decentral.sim.events` on a :class:`decentral.sim.clocks.Clock` and
returns a :class:`Trace`, the list of server steps (time, who contributed, which model version each trained on,
their staleness) and every client event (dispatch, arrival, drop, join). :func:`replay` then runs the numbers along
the trace with the caller's jitted per-client and per-step functions; replaying a trace (or its JSON) gives the
same parameters bit for bit, and the same seed gives the same trace.

Schemes (Fraboni et al., arXiv 2206.10189, Section 5 and the official ``FL/clients_schedule.py``):

- ``'sync'``: FedAvg. Every available client trains on the current model; the server steps when the last of them
  has returned (a round lasts as long as its slowest client), then sends the new model to all.
- ``'async'``: asynchronous FedAvg. The server steps at every arrival and the client restarts at once on the new
  model. Clients arriving at the same instant are aggregated in one step (``group_ties``; the official code
  serialises them, one step each, which ``group_ties=False`` reproduces).
- ``'fedbuff'``: FedBuff (Nguyen et al., arXiv 2106.06639) as in Fraboni et al.'s code: arrivals wait in a buffer;
  the server steps when ``buffer`` results are in, and those clients restart on the new model (they are idle while
  the buffer fills; in Nguyen et al. a client restarts at once on the current model: ``restart='immediate'``).
- ``'fedfix'``: FedFix. The server steps every ``period`` of time with whoever has returned since the last step
  (possibly nobody); those clients restart on the new model at the step.

A client that drops loses its task and rejoins ``rejoin_after`` later; a client that joins (or rejoins) starts on
the current model at once (``'sync'``: at the next round). Model version n is the model after n server steps; a
step's staleness for client i is n - (the version i trained on).

>>> from decentral.sim.clocks import Clock
>>> trace = simulate(Clock(2, scale=[1.0, 3.0]), 'async', total_time=6.0)
>>> [(s.time, s.clients, s.versions) for s in trace.steps[:3]]   # client 1 (3x slower) trained on version 0
[(1.0, (0,), (0,)), (2.0, (0,), (1,)), (3.0, (0, 1), (2, 0))]
>>> trace.staleness()[2]   # ... and arrives at step 2, which makes version 3
(0, 2)
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable

import numpy as np

from decentral.sim.clocks import Clock
from decentral.sim.events import EventQueue

SCHEMES = ('sync', 'async', 'fedbuff', 'fedfix')
PyTree = Any


@dataclasses.dataclass(frozen=True)
class Step:
  """One server step: at ``time`` the results of ``clients`` (their ``tasks``-th tasks, trained on model
  ``versions``) are aggregated into model version ``index + 1``."""

  index: int
  time: float
  clients: tuple[int, ...]
  versions: tuple[int, ...]
  tasks: tuple[int, ...]


@dataclasses.dataclass
class Trace:
  """A recorded run: the server steps and every client event ``(time, kind, client, task, version)``."""

  scheme: str
  num_clients: int
  total_time: float
  steps: list[Step]
  events: list[tuple[float, str, int, int, int]]

  def staleness(self) -> list[tuple[int, ...]]:
    """Per step, n - version for each contributing client."""
    return [tuple(s.index - v for v in s.versions) for s in self.steps]

  def participation(self) -> np.ndarray:
    """pi_i: the fraction of server steps in which client i contributes."""
    counts = np.zeros(self.num_clients)
    for s in self.steps:
      for i in s.clients:
        counts[i] += 1
    return counts / max(len(self.steps), 1)

  def wall_clock(self) -> float:
    """Simulated time of the last server step (0 without steps)."""
    return self.steps[-1].time if self.steps else 0.0

  def to_json(self) -> str:
    return json.dumps({'scheme': self.scheme, 'num_clients': self.num_clients, 'total_time': self.total_time,
                       'steps': [dataclasses.astuple(s) for s in self.steps], 'events': self.events})

  @classmethod
  def from_json(cls, text: str) -> 'Trace':
    d = json.loads(text)
    steps = [Step(int(i), float(t), tuple(c), tuple(v), tuple(k)) for i, t, c, v, k in d['steps']]
    events = [(float(t), str(kind), int(c), int(k), int(v)) for t, kind, c, k, v in d['events']]
    return cls(d['scheme'], int(d['num_clients']), float(d['total_time']), steps, events)


def simulate(clock: Clock, scheme: str, *, total_time: float, buffer: int | None = None,
             period: float | None = None, group_ties: bool = True, restart: str = 'after_step') -> Trace:
  """Simulates the server's schedule until ``total_time``; see the module docstring for the schemes.

  Args:
    clock: the clients' task durations, dropouts and joins.
    scheme: one of :data:`SCHEMES`.
    total_time: no step after this simulated time.
    buffer: K of ``'fedbuff'``.
    period: Delta t of ``'fedfix'``.
    group_ties: ``'async'``: aggregate simultaneous arrivals in one step (else one step each, in client order).
    restart: ``'fedbuff'``: ``'after_step'`` (Fraboni et al.'s code) or ``'immediate'`` (Nguyen et al.).

  Returns:
    The :class:`Trace`.
  """
  if scheme not in SCHEMES:
    raise ValueError(f'simulate: scheme must be one of {SCHEMES}, got {scheme!r}')
  if not total_time > 0:
    raise ValueError(f'simulate: total_time must be > 0, got {total_time!r}')
  if scheme == 'fedbuff' and not (isinstance(buffer, int) and 1 <= buffer <= clock.num_clients):
    raise ValueError(f'simulate: fedbuff needs 1 <= buffer <= num_clients, got {buffer!r}')
  if scheme == 'fedfix' and not (period is not None and period > 0):
    raise ValueError(f'simulate: fedfix needs a period > 0, got {period!r}')
  if restart not in ('after_step', 'immediate'):
    raise ValueError(f"simulate: restart must be 'after_step' or 'immediate', got {restart!r}")
  return _Simulation(clock, scheme, total_time, buffer, period, group_ties, restart).run()


class _Simulation:
  """The event loop behind :func:`simulate` (one instance per run)."""

  def __init__(self, clock, scheme, total_time, buffer, period, group_ties, restart):
    self.clock, self.scheme, self.total_time = clock, scheme, float(total_time)
    self.buffer, self.period, self.group_ties, self.restart = buffer, period, group_ties, restart
    self.queue = EventQueue()
    self.version = 0
    self.task = [0] * clock.num_clients
    self.busy: set[int] = set()
    self.waiting: list[int] = []          # available, waiting for a model (sync rounds, after a buffered step)
    self.pending: list[tuple[int, int, int]] = []   # (client, task, version) results not yet aggregated
    self.round_start = None               # sync: when the running round started
    self.steps: list[Step] = []
    self.events: list[tuple[float, str, int, int, int]] = []

  def log(self, t, kind, client, task, version):
    self.events.append((float(t), kind, int(client), int(task), int(version)))

  def dispatch(self, t, client):
    k = self.task[client]
    self.task[client] += 1
    self.busy.add(client)
    self.log(t, 'dispatch', client, k, self.version)
    kind = 'drop' if self.clock.drops(client, k) else 'arrive'
    self.queue.push(t + self.clock.duration(client, k), kind, client, (k, self.version))

  def step(self, t, results):
    results = sorted(results)
    self.steps.append(Step(len(self.steps), float(t), tuple(r[0] for r in results),
                           tuple(r[2] for r in results), tuple(r[1] for r in results)))
    self.version += 1

  def run(self) -> Trace:
    for i in range(self.clock.num_clients):
      self.queue.push(self.clock.join_time(i), 'join', i)
    if self.scheme == 'fedfix':
      self.queue.push(self.period, 'tick')
    while self.queue and self.queue.peek().time <= self.total_time:
      event = self.queue.pop()
      getattr(self, f'on_{event.kind}')(event)
    return Trace(self.scheme, self.clock.num_clients, self.total_time, self.steps, self.events)

  def on_join(self, e):
    self.log(e.time, 'join', e.worker, self.task[e.worker], self.version)
    if self.scheme != 'sync' or self.round_start == e.time:   # (sync: joins the round starting now)
      self.dispatch(e.time, e.worker)
    elif self.busy:
      self.waiting.append(e.worker)   # a round is running: wait for the next one
    else:
      self.waiting.append(e.worker)
      self._sync_round(e.time)

  def on_drop(self, e):
    k, v = e.payload
    self.busy.discard(e.worker)
    self.log(e.time, 'drop', e.worker, k, v)
    self.queue.push(e.time + self.clock.rejoin_after, 'join', e.worker)
    if self.scheme == 'sync' and not self.busy:
      self._sync_round(e.time)

  def on_arrive(self, e):
    k, v = e.payload
    self.busy.discard(e.worker)
    self.log(e.time, 'arrive', e.worker, k, v)
    self.pending.append((e.worker, k, v))
    if self.scheme == 'async':
      while self.group_ties and self.queue and self.queue.peek().time == e.time and self.queue.peek().kind == 'arrive':
        other = self.queue.pop()
        self.busy.discard(other.worker)
        self.log(other.time, 'arrive', other.worker, *other.payload)
        self.pending.append((other.worker, *other.payload))
      self._flush(e.time, restart=True)
    elif self.scheme == 'fedbuff':
      if self.restart == 'immediate':
        self.dispatch(e.time, e.worker)
      else:
        self.waiting.append(e.worker)
      if len(self.pending) >= self.buffer:
        self._flush(e.time, restart=self.restart == 'after_step')
    elif self.scheme == 'fedfix':
      self.waiting.append(e.worker)
    elif not self.busy:   # sync: the round's last result
      self.waiting.extend(r[0] for r in self.pending)
      self._sync_round(e.time)

  def on_tick(self, e):
    self._flush(e.time, restart=True)
    self.queue.push(e.time + self.period, 'tick')

  def _flush(self, t, *, restart):
    """A server step with every pending result; the clients that contributed (or wait) restart if asked."""
    results, self.pending = self.pending, []
    self.step(t, [(c, k, v) for c, k, v in results])
    if restart:
      restarting = sorted(set([r[0] for r in results] if self.scheme == 'async' else self.waiting))
      self.waiting = [] if self.scheme != 'async' else self.waiting
      for c in restarting:
        self.dispatch(t, c)

  def _sync_round(self, t):
    if self.pending:
      results, self.pending = self.pending, []
      self.step(t, [(c, k, v) for c, k, v in results])
    starting, self.waiting = sorted(set(self.waiting)), []
    self.round_start = t
    for c in starting:
      self.dispatch(t, c)


def replay(trace: Trace, params: PyTree, client_fn: Callable[[PyTree, int, int], PyTree],
           server_fn: Callable[[PyTree, Any, tuple, np.ndarray], tuple[PyTree, Any]], server_state: Any = None, *,
           on_step: Callable[[Step, PyTree], Any] | None = None) -> tuple[PyTree, Any]:
  """Runs the numbers along a recorded trace.

  For each server step n, each contributing client i computes ``client_fn(model version v_i, i, task k_i)``
  (its result, e.g. a model delta; jitted by the caller), and ``server_fn(params, server_state, results, mask)``
  (jitted) makes version n + 1. ``results`` is a tuple with one entry per client (zeros for those not in the step)
  and ``mask`` a float array marking the contributing ones, so every step has the same shapes and compiles once.
  Model versions are kept only until their last use in the trace.

  Returns:
    (the final parameters, the final server state).
  """
  import jax  # the simulator itself needs no JAX; replay does
  last_use: dict[int, int] = {}
  for s in trace.steps:
    for v in s.versions:
      last_use[v] = s.index
  versions = {0: params}
  zeros = None
  for s in trace.steps:
    results = [None] * trace.num_clients
    for c, v, k in zip(s.clients, s.versions, s.tasks):
      results[c] = client_fn(versions[v], c, k)
    if zeros is None:
      first = next((r for r in results if r is not None), None)
      template = params if first is None else first
      zeros = jax.tree.map(lambda x: jax.numpy.zeros_like(x), template)
    results = tuple(zeros if r is None else r for r in results)
    mask = np.zeros(trace.num_clients, np.float32)
    mask[list(s.clients)] = 1.0
    params, server_state = server_fn(params, server_state, results, mask)
    for v in set(s.versions):
      if last_use.get(v) == s.index and v in versions:
        del versions[v]
    if last_use.get(s.index + 1, -1) > s.index:
      versions[s.index + 1] = params
    if on_step is not None:
      on_step(s, params)
  return params, server_state

