"""Client clocks for the event simulator: how long a client's task takes, how late it arrives, whether it drops.

A :class:`Clock` is a pure function of (seed, client, task index): rerunning a simulation with the same clock sees
the same times, whatever order the events are processed in. One task is what a client does between receiving a
model and returning its result (a few local steps, one gradient-coding round).

Its duration is ``compute + delay``:

- compute time: ``scale[i] * X``, with X from the law: ``'fixed'`` (X = 1), ``'lognormal'`` (X = exp(sigma Z),
  Z ~ N(0, 1)), or ``'exponential'`` (the shifted exponential of the gradient-coding literature,
  X = 1 + Exp(rate)); on top, a **straggler mixture**: with probability ``straggler_prob`` the task is slowed by
  ``straggler_factor``; with ``straggler_persist`` > 0 straggling comes in bursts (a two-state Markov chain per
  client, the Gilbert-Elliott model: a straggling task is followed by another with probability
  ``straggler_persist``, a normal one by a straggling one with probability ``straggler_prob``);
- network delay: ``delay * exp(delay_sigma Z')`` (0 by default);
- dropout: with probability ``dropout`` the client disappears during the task (its result never arrives) and comes
  back ``rejoin_after`` later; ``join_times[i]`` is when client i first becomes available (0 by default).

:func:`linear_speeds` gives the per-client scales of Fraboni et al. (arXiv 2206.10189, official code
``FL/clients_schedule.py``, scenario ``F-X``): tau_i = 1 - i (X / 100) / (M - 1), the fastest client X% faster
than the slowest.

``clock.duration`` has the ``step_time(worker, step)`` signature of :mod:`decentral.sim.events`, so a clock also
drives A-EDiT (:func:`decentral.local_sgd.run_a_edit`, ``step_time=clock.duration``).

>>> clock = Clock(3, scale=linear_speeds(3, 50))
>>> [clock.duration(i, 0) for i in range(3)]
[1.0, 0.75, 0.5]
>>> c = Clock(2, law='lognormal', sigma=0.5, seed=1)
>>> c.duration(1, 7) == Clock(2, law='lognormal', sigma=0.5, seed=1).duration(1, 7)
True
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np

from decentral import checks

LAWS = ('fixed', 'lognormal', 'exponential')
_COMPUTE, _STRAGGLE, _DELAY, _DROP = range(4)   # independent random streams


def linear_speeds(num_clients: int, faster_percent: float) -> np.ndarray:
  """tau_i = 1 - i (X / 100) / (M - 1), i = 0..M-1: Fraboni et al.'s ``F-X`` scenario (client 0 the slowest)."""
  checks.positive_int(num_clients, 'linear_speeds: num_clients')
  if not 0 <= faster_percent < 100:
    raise ValueError(f'linear_speeds: faster_percent must be in [0, 100), got {faster_percent!r}')
  return 1.0 - np.arange(num_clients) * (faster_percent / 100) / max(num_clients - 1, 1)


@dataclasses.dataclass(frozen=True)
class Clock:
  """Task durations, delays, dropouts and joins of ``num_clients`` clients (see the module docstring).

  Attributes:
    num_clients: M.
    law: the compute-time law, one of :data:`LAWS`.
    scale: per-client nominal compute time (a number for all, or M numbers); 1 by default.
    sigma: the log-normal's sigma (``law='lognormal'``).
    rate: the exponential's rate (``law='exponential'``): X = 1 + Exp(rate).
    straggler_prob, straggler_factor: the straggler mixture (a task is ``straggler_factor`` times slower with
      probability ``straggler_prob``).
    straggler_persist: the probability that a straggling task is followed by another (bursts; 0: independent).
    delay, delay_sigma: network delay per task, ``delay * LogNormal(0, delay_sigma)``.
    dropout: probability that a task's result is lost (the client leaves).
    rejoin_after: how long a dropped client stays away.
    join_times: when each client first becomes available (None: all at 0).
    seed: seeds every random stream.
  """

  num_clients: int
  law: str = 'fixed'
  scale: float | Sequence[float] = 1.0
  sigma: float = 0.0
  rate: float = 1.0
  straggler_prob: float = 0.0
  straggler_factor: float = 1.0
  straggler_persist: float = 0.0
  delay: float = 0.0
  delay_sigma: float = 0.0
  dropout: float = 0.0
  rejoin_after: float = 1.0
  join_times: Sequence[float] | None = None
  seed: int = 0

  def __post_init__(self):
    checks.positive_int(self.num_clients, 'Clock: num_clients')
    if self.law not in LAWS:
      raise ValueError(f'Clock: law must be one of {LAWS}, got {self.law!r}')
    scale = np.broadcast_to(np.asarray(self.scale, np.float64), (self.num_clients,))
    if np.any(~np.isfinite(scale)) or np.any(scale <= 0):
      raise ValueError(f'Clock: scale must be positive and finite, got {self.scale!r}')
    for name in ('sigma', 'delay', 'delay_sigma', 'rejoin_after'):
      value = getattr(self, name)
      if not (math.isfinite(value) and value >= 0):
        raise ValueError(f'Clock: {name} must be non-negative and finite, got {value!r}')
    checks.positive_finite(self.rate, 'Clock: rate')
    if not self.straggler_factor >= 1:
      raise ValueError(f'Clock: straggler_factor must be >= 1, got {self.straggler_factor!r}')
    for name in ('straggler_prob', 'straggler_persist', 'dropout'):
      value = getattr(self, name)
      if not 0 <= value <= 1:
        raise ValueError(f'Clock: {name} must be in [0, 1], got {value!r}')
    joins = np.zeros(self.num_clients) if self.join_times is None else np.asarray(self.join_times, np.float64)
    if joins.shape != (self.num_clients,) or np.any(~np.isfinite(joins)) or np.any(joins < 0):
      raise ValueError(f'Clock: join_times must be {self.num_clients} non-negative times, got {self.join_times!r}')
    object.__setattr__(self, '_scale', scale)
    object.__setattr__(self, '_joins', joins)
    object.__setattr__(self, '_chain', {})   # client -> straggling flags of its tasks 0..k (the Markov chain)

  def _rng(self, stream: int, client: int, task: int) -> np.random.Generator:
    return np.random.default_rng([self.seed, stream, int(client), int(task)])

  def compute(self, client: int, task: int) -> float:
    """Compute time of client's ``task``-th task (straggler slowdown included)."""
    x = 1.0
    if self.law == 'lognormal' and self.sigma > 0:
      x = float(np.exp(self.sigma * self._rng(_COMPUTE, client, task).standard_normal()))
    elif self.law == 'exponential':
      x = 1.0 + float(self._rng(_COMPUTE, client, task).exponential(1.0 / self.rate))
    if self.straggles(client, task):
      x *= self.straggler_factor
    return float(self._scale[client] * x)

  def straggles(self, client: int, task: int) -> bool:
    """Whether the task is a straggling one (the mixture, or the Markov chain when ``straggler_persist`` > 0)."""
    if self.straggler_prob == 0 and self.straggler_persist == 0:
      return False
    if self.straggler_persist == 0:
      return bool(self._rng(_STRAGGLE, client, task).random() < self.straggler_prob)
    chain = self._chain.setdefault(int(client), [])
    while len(chain) <= task:   # extend the chain in order: the same flags whatever order tasks are asked in
      previous = chain[-1] if chain else False
      u = self._rng(_STRAGGLE, client, len(chain)).random()
      chain.append(bool(u < (self.straggler_persist if previous else self.straggler_prob)))
    return chain[task]

  def network(self, client: int, task: int) -> float:
    """Network delay of the task's round trip."""
    if self.delay == 0:
      return 0.0
    noise = float(np.exp(self.delay_sigma * self._rng(_DELAY, client, task).standard_normal()))
    return float(self.delay * noise)

  def duration(self, client: int, task: int) -> float:
    """From receiving the model to the result arriving at the server: compute + network."""
    return self.compute(client, task) + self.network(client, task)

  def drops(self, client: int, task: int) -> bool:
    """Whether the client leaves during this task (its result is lost)."""
    return self.dropout > 0 and bool(self._rng(_DROP, client, task).random() < self.dropout)

  def join_time(self, client: int) -> float:
    return float(self._joins[client])

  def mean_scale(self) -> np.ndarray:
    """The per-client nominal compute times."""
    return self._scale.copy()
