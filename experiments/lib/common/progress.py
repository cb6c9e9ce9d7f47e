"""The progress line every long loop prints: ``k/N``, the numbers that matter, and the time left.

The time left is measured from the first call on, not from the start of the loop: a loop calls ``progress(k)``
after its k-th item, so the first call comes after the first (compiled) step and the rate, hence the estimate,
excludes compilation. Lines come every ``every`` items (default: about ten lines per loop) and at the last one.

>>> p = Progress(4, 'grid', every=2, clock=iter([0.0, 1.0, 2.0, 3.0]).__next__)
>>> p(1, loss=0.5)
>>> p(2, loss=0.25, rule='krum')
grid 2/4  loss 0.25  rule krum  1.0 s/it  2s left
>>> p(3, loss=0.2)
>>> p(4, loss=0.125)
grid 4/4  loss 0.125  1.0 s/it  done in 3s
"""

from __future__ import annotations

import time
from typing import Any, Callable


def duration(seconds: float) -> str:
  """``42s``, ``3m05s``, ``2h07m``: a duration as one reads it on a progress line.

  >>> duration(42.4), duration(185), duration(7625)
  ('42s', '3m05s', '2h07m')
  """
  seconds = int(round(seconds))
  if seconds < 60:
    return f'{seconds}s'
  if seconds < 3600:
    return f'{seconds // 60}m{seconds % 60:02d}s'
  return f'{seconds // 3600}h{seconds % 3600 // 60:02d}m'


def number(value: Any) -> str:
  """A value on a progress line: floats to 4 significant digits, anything else as it prints."""
  if isinstance(value, float):
    return f'{value:.4g}'
  return str(value)


class Progress:
  """Prints ``<label> k/N  name value ...  <rate>  <time> left`` for a loop of ``total`` items.

  Args:
    total: the number of items (steps, grid cells, sweep points) of the whole loop.
    label: what the loop is (``'[adam]'``, ``'robust grid'``), printed first.
    every: print every this many items (and at the last); ``None``: about ten lines in all; 0: never.
    start: the items already done before this loop (a resumed run), so ``k`` counts from the whole loop's start.
    unit: the name of an item in the rate (``'step'`` prints ``12.3 steps/s``; slower loops print ``s/it``).
    clock: the time source (tests pass a fake one).
  """

  def __init__(self, total: int, label: str = '', *, every: int | None = None, start: int = 0, unit: str = 'it',
               clock: Callable[[], float] = time.perf_counter):
    self.total, self.label, self.unit, self.clock = total, label, unit, clock
    self.every = max(1, (total - start) // 10) if every is None else every
    self.first: tuple[int, float] | None = None  # (k, time) of the first call: the clock starts after compiling

  def due(self, k: int) -> bool:
    """Whether item ``k`` gets a line (callers that must fetch a value from the device ask first)."""
    return self.every > 0 and (k % self.every == 0 or k == self.total)

  def __call__(self, k: int, **values: Any) -> None:
    """Marks item ``k`` (1-based) done and prints the line if it is due; ``values`` are the numbers to show."""
    now = self.clock()
    if self.first is None:
      self.first = (k, now)
    if not self.due(k):
      return
    parts = [f'{self.label} {k}/{self.total}'.strip()] + [f'{name} {number(v)}' for name, v in values.items()]
    k0, t0 = self.first
    if k > k0:
      per_item = (now - t0) / (k - k0)
      plural = self.unit if self.unit == 'it' else f'{self.unit}s'
      rate = f'{1 / per_item:.1f} {plural}/s' if 0 < per_item < 1 else f'{per_item:.1f} s/{self.unit}'
      left = duration(per_item * (self.total - k))
      parts += [rate, f'{left} left' if k < self.total else f'done in {duration(now - t0)}']
    print('  '.join(parts), flush=True)
