"""A small host-side discrete-event simulator for algorithms that are not lock-step.

Workers run at their own speeds; the simulator keeps simulated time, pops events in time order and calls the
algorithm's jitted per-event steps (a local step of one worker, a synchronisation of all of them). Nothing here
is jitted: it is the clock, the queue and the bookkeeping around jitted code, deterministic for a given seed
(ties in time are broken by insertion order).

- :class:`EventQueue`: a priority queue of :class:`Event` (time, then insertion order).
- :func:`step_time_model`: per-worker step durations: a fixed speed per worker (``slowdown``) times log-normal
  jitter, a pure function of (seed, worker, step) so reruns see the same clock.
- :func:`run_time_triggered`: workers step independently; every ``period`` of simulated time each worker stops
  at its next step boundary, and once all have arrived a round runs (A-EDiT's time-triggered synchronisation,
  FedFix-style fixed-interval aggregation); then all resume together.
- :func:`run_step_triggered`: the same with a barrier every ``steps_per_round`` steps of each worker (EDiT's and
  DiLoCo's synchronous rounds, where every round waits for the slowest worker).

Both take a ``round_cost``: the simulated time a round itself takes (its communication, e.g. EDiT's layer-wise
schedule, :func:`decentral.local_sgd.async_edit.layerwise_sync_schedule`) before the workers resume.

>>> times = step_time_model(2, slowdown=[1.0, 2.0], jitter=0.0)
>>> log = []
>>> run_time_triggered(2, times, period=3.0, total_time=6.0,
...                    on_step=lambda w, k, t: log.append((w, k, t)),
...                    on_round=lambda t, steps: log.append(('sync', t, tuple(steps))) or True)
2
>>> log[3:6]  # worker 0 reaches the barrier at t=3 and waits for worker 1 (t=4)
[(0, 2, 3.0), (1, 1, 4.0), ('sync', 4.0, (3, 2))]
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import math
from typing import Any, Callable, Sequence

import numpy as np

from decentral import checks


@dataclasses.dataclass(frozen=True, order=True)
class Event:
  """An event at simulated ``time``; ``seq`` (insertion order) breaks ties so runs are deterministic."""

  time: float
  seq: int
  kind: str = dataclasses.field(compare=False)
  worker: int = dataclasses.field(compare=False, default=-1)
  payload: Any = dataclasses.field(compare=False, default=None)


class EventQueue:
  """Events popped in order of (time, insertion)."""

  def __init__(self):
    self._heap: list[Event] = []
    self._seq = itertools.count()

  def push(self, time: float, kind: str, worker: int = -1, payload: Any = None) -> Event:
    if not math.isfinite(time):
      raise ValueError(f'event time must be finite, got {time!r}')
    event = Event(float(time), next(self._seq), kind, worker, payload)
    heapq.heappush(self._heap, event)
    return event

  def pop(self) -> Event:
    return heapq.heappop(self._heap)

  def peek(self) -> Event:
    return self._heap[0]

  def __len__(self) -> int:
    return len(self._heap)


def step_time_model(num_workers: int, *, slowdown: Sequence[float] | None = None, base: float = 1.0,
                    jitter: float = 0.0, seed: int = 0) -> Callable[[int, int], float]:
  """Step durations: ``base * slowdown[w] * LogNormal(0, jitter)``, a pure function of (seed, worker, step).

  Args:
    num_workers: n.
    slowdown: per-worker factors (1 = nominal speed; 2 = half as fast); all ones by default.
    base: the nominal step time.
    jitter: sigma of the log-normal noise on each step (0: deterministic).
    seed: seeds the noise.

  Returns:
    ``duration(worker, step) -> float``.
  """
  checks.positive_int(num_workers, 'num_workers')
  factors = np.ones(num_workers) if slowdown is None else np.asarray(slowdown, np.float64)
  if factors.shape != (num_workers,) or np.any(~np.isfinite(factors)) or np.any(factors <= 0):
    raise ValueError(f'slowdown must be {num_workers} positive finite factors, got {slowdown!r}')
  checks.positive_finite(base, 'base')
  if not (math.isfinite(jitter) and jitter >= 0):
    raise ValueError(f'jitter must be non-negative and finite, got {jitter!r}')

  def duration(worker: int, step: int) -> float:
    noise = 1.0
    if jitter > 0:
      noise = float(np.exp(jitter * np.random.default_rng([seed, worker, step]).standard_normal()))
    return float(base * factors[worker] * noise)

  return duration


def _round_cost(round_cost: float | Callable[[int], float], index: int) -> float:
  cost = float(round_cost(index) if callable(round_cost) else round_cost)
  if not (math.isfinite(cost) and cost >= 0):
    raise ValueError(f'round_cost must be non-negative and finite, got {cost!r}')
  return cost


def run_time_triggered(num_workers: int, step_time: Callable[[int, int], float], *, period: float,
                       total_time: float, on_step: Callable[[int, int, float], Any],
                       on_round: Callable[[float, list[int]], bool],
                       round_cost: float | Callable[[int], float] = 0.0) -> int:
  """Workers step at their own pace; every ``period`` they meet at a barrier and a round runs.

  Each worker w runs steps k = 0, 1, ... back to back, step k taking ``step_time(w, k)``; ``on_step(w, k, t)``
  is called when it completes at time t. The first completion at or after the round's trigger time sends the
  worker to the barrier; when the last one arrives (time t_r), ``on_round(t_r, steps)`` runs with the number of
  steps each worker completed since the previous round. It returns whether the round counted (False: skipped,
  e.g. too few steps); either way the next trigger is t_r + c + period and every worker resumes at t_r + c (the
  faster ones idled at the barrier), c the ``round_cost`` of a counted round (0 for a skipped one; a callable
  receives the round's index, counting from 0). The simulation stops at the first barrier at or after
  ``total_time``.

  Returns:
    The number of rounds for which ``on_round`` returned True.
  """
  checks.positive_finite(period, 'period')
  return _run(num_workers, step_time, lambda t, since, trigger: t >= trigger, period, total_time, on_step,
              on_round, round_cost)


def run_step_triggered(num_workers: int, step_time: Callable[[int, int], float], *, steps_per_round: int,
                       total_time: float, on_step: Callable[[int, int, float], Any],
                       on_round: Callable[[float, list[int]], bool],
                       round_cost: float | Callable[[int], float] = 0.0) -> int:
  """Like :func:`run_time_triggered`, but each worker goes to the barrier after ``steps_per_round`` steps.

  Every round then waits for the slowest worker's ``steps_per_round`` steps (synchronous local SGD: EDiT,
  DiLoCo); ``round_cost`` as there. Stops at the first barrier at or after ``total_time``.

  >>> log = []
  >>> run_step_triggered(2, step_time_model(2, slowdown=[1.0, 2.0]), steps_per_round=2, total_time=8.0,
  ...                    on_step=lambda w, k, t: None, round_cost=0.5,
  ...                    on_round=lambda t, steps: log.append((t, tuple(steps))) or True)
  2
  >>> log   # worker 1 needs 4.0 for 2 steps; the second round ends at 4.0 + 0.5 + 4.0
  [(4.0, (2, 2)), (8.5, (2, 2))]
  """
  checks.positive_int(steps_per_round, 'steps_per_round')
  return _run(num_workers, step_time, lambda t, since, trigger: since >= steps_per_round, 0.0, total_time,
              on_step, on_round, round_cost)


def _run(num_workers, step_time, at_barrier, period, total_time, on_step, on_round, round_cost) -> int:
  checks.positive_finite(total_time, 'total_time')
  queue = EventQueue()
  step = [0] * num_workers
  since = [0] * num_workers
  for w in range(num_workers):
    queue.push(step_time(w, 0), 'step', w)
  trigger, arrived, rounds = period, [], 0
  while queue:
    event = queue.pop()
    w = event.worker
    on_step(w, step[w], event.time)
    step[w] += 1
    since[w] += 1
    if at_barrier(event.time, since[w], trigger):
      arrived.append(event.time)
      if len(arrived) < num_workers:
        continue
      t_round = max(arrived)
      counted = bool(on_round(t_round, list(since)))
      resume = t_round + (_round_cost(round_cost, rounds) if counted else 0.0)
      rounds += counted
      since, arrived, trigger = [0] * num_workers, [], resume + period
      if t_round >= total_time:
        break
      for v in range(num_workers):
        queue.push(resume + step_time(v, step[v]), 'step', v)
    else:
      queue.push(event.time + step_time(w, step[w]), 'step', w)
  return rounds
