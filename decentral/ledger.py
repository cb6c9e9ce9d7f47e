"""The communication ledger: exact bytes each worker sends, per round and in total, for loss-versus-bytes plots.

Two halves:

- **In the jitted step.** A transform that communicates keeps a :class:`CommStats` in its state (a field named
  ``comm``): ``sent`` is the number of bytes this worker put on the wire in its latest update (int32; one round
  of one worker stays far below 2^31), ``rounds`` the number of updates that communicated. For fixed-size
  encodings ``sent`` is a constant from the shapes (:func:`decentral.compression.tree_nbytes`); for
  data-dependent ones (DGC's threshold, a first dense round) it is computed in the step from the payload.
  :func:`sent_bytes` finds every :class:`CommStats` inside any optimizer state (chains, nested states) and
  sums their ``sent``, so a chain of two communicating transforms reports both.
- **On the host.** :class:`Ledger` accumulates the per-round bytes as Python integers (no overflow however
  long the run) and returns rows ready for ``metrics.jsonl``.

Convention: what is counted is the **uplink**, the encoded payload each worker sends per round (the EF21 and DGC
papers' count). The broadcast of the aggregate back to the workers (downlink) is not counted unless a
transform says so; :meth:`Ledger.record` takes an optional ``received`` for methods that count it.

>>> import numpy as np
>>> led = Ledger(num_workers=4)
>>> led.record(step=0, sent=np.array([10, 10, 12, 10]))
42
>>> led.record(step=1, sent=10)  # one int: the same for every worker
82
>>> led.total, led.per_worker.tolist(), led.rounds
(82, [20, 20, 22, 20], 2)
>>> dense_nbytes({'w': np.zeros((3, 4), np.float32), 'b': np.zeros(4, np.float32)})
64
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from decentral import checks

PyTree = Any


class CommStats(NamedTuple):
  """Bytes this worker sent in its latest update (``sent``, int32) and updates that communicated."""

  sent: jax.Array
  rounds: jax.Array


def init_stats() -> CommStats:
  return CommStats(jnp.zeros([], jnp.int32), jnp.zeros([], jnp.int32))


def step_stats(stats: CommStats, sent: int | jax.Array, communicated: bool | jax.Array = True) -> CommStats:
  """The stats after an update that sent ``sent`` bytes (0 and no round if ``communicated`` is False)."""
  communicated = jnp.asarray(communicated)
  sent = jnp.where(communicated, jnp.asarray(sent, jnp.int32), 0)
  return CommStats(sent, stats.rounds + communicated.astype(jnp.int32))


def _is_stats(x) -> bool:
  return isinstance(x, CommStats)


def find_stats(state: PyTree) -> list[CommStats]:
  """Every :class:`CommStats` inside an optimizer state, in tree order."""
  return [x for x in jax.tree.leaves(state, is_leaf=_is_stats) if _is_stats(x)]


def sent_bytes(state: PyTree) -> jax.Array:
  """Bytes sent in the latest update by this worker, summed over every communicating transform in ``state``.

  Works on a per-worker state (a scalar) or on states stacked over workers by ``decentral.axis.run`` (an array
  with one entry per worker).
  """
  stats = find_stats(state)
  if not stats:
    raise ValueError('no CommStats found in the state: the transform does not report its communication')
  return sum(s.sent for s in stats)


def dense_nbytes(tree: PyTree) -> int:
  """Bytes of ``tree`` sent uncompressed: sum over leaves of size x itemsize."""
  return int(sum(int(np.prod(np.shape(x), dtype=np.int64)) * np.dtype(x.dtype).itemsize
                 for x in jax.tree.leaves(tree)))


def compression_ratio(dense: int, sent: int) -> float:
  """dense / sent (inf when nothing was sent)."""
  return float('inf') if sent == 0 else dense / sent


class Ledger:
  """Host-side running totals of bytes per worker; exact Python integers.

  Args:
    num_workers: n; per-round records are per-worker vectors of this length (or one int for all workers).
  """

  def __init__(self, num_workers: int):
    self.num_workers = checks.positive_int(num_workers, 'num_workers')
    self.per_worker = np.zeros(self.num_workers, dtype=object)  # Python ints: exact, unbounded
    self.received = np.zeros(self.num_workers, dtype=object)
    self.rounds = 0
    self.history: list[dict] = []

  def _vector(self, value, name):
    arr = np.asarray(jax.device_get(value))
    if arr.ndim == 0:
      arr = np.full(self.num_workers, arr)
    if arr.shape != (self.num_workers,):
      raise ValueError(f'{name} must be one int or one per worker ({self.num_workers}), got shape {arr.shape}')
    if np.any(arr < 0):
      raise ValueError(f'{name} must be non-negative, got {arr}')
    return np.array([int(v) for v in arr], dtype=object)

  def record(self, step: int, sent, received=None) -> int:
    """Adds one round's bytes sent by each worker (and optionally received); returns the total sent so far."""
    s = self._vector(sent, 'sent')
    self.per_worker = self.per_worker + s
    if received is not None:
      self.received = self.received + self._vector(received, 'received')
    self.rounds += 1
    self.history.append({'step': int(step), 'bytes_round': int(sum(s)), 'bytes_total': self.total})
    return self.total

  def record_state(self, step: int, state: PyTree) -> int:
    """Records the bytes found in a state stacked over workers (see :func:`sent_bytes`)."""
    return self.record(step, sent_bytes(state))

  @property
  def total(self) -> int:
    """Bytes sent by all workers together so far."""
    return int(sum(self.per_worker))

  @property
  def mean_per_worker(self) -> float:
    return self.total / self.num_workers

  def row(self) -> dict:
    """The latest totals as a JSON-ready dict: bytes_total, bytes_per_worker (mean), rounds."""
    return {'bytes_total': self.total, 'bytes_per_worker': self.mean_per_worker, 'rounds': self.rounds}
