"""Argument checks shared by the worker-axis methods: fail early with a message naming the argument.

``name`` is what the message calls the argument; prefix it with the function when that helps the reader
(``'centered_clipping: iters'``).

>>> positive_int(3, 'sync_every')
3
>>> positive_int(0, 'sync_every')
Traceback (most recent call last):
...
ValueError: sync_every must be a positive integer, got 0
"""

from __future__ import annotations

import math

import numpy as np

from optim.checks import qualified


def is_int(value) -> bool:
  """A Python or NumPy integer, not a bool."""
  return not isinstance(value, bool) and isinstance(value, (int, np.integer))


def positive_int(value, name: str) -> int:
  """``value`` as an int; ``ValueError`` unless it is an integer >= 1."""
  if not is_int(value) or value < 1:
    raise ValueError(f'{qualified(name)} must be a positive integer, got {value!r}')
  return int(value)


def non_negative_int(value, name: str) -> int:
  """``value`` as an int; ``ValueError`` unless it is an integer >= 0."""
  if not is_int(value) or value < 0:
    raise ValueError(f'{qualified(name)} must be a non-negative integer, got {value!r}')
  return int(value)


def unit_interval(value, name: str) -> float:
  """``value`` as a float; ``ValueError`` unless it lies in [0, 1]."""
  if not (math.isfinite(value) and 0 <= value <= 1):
    raise ValueError(f'{qualified(name)} must be in [0, 1], got {value!r}')
  return float(value)


def fraction(value, name: str, *, optional: bool = False) -> float | None:
  """``value`` as a float; ``ValueError`` unless it lies in (0, 1] (None passes when ``optional``)."""
  if optional and value is None:
    return None
  if value is None or not (0 < value <= 1 and math.isfinite(value)):
    raise ValueError(f'{qualified(name)} must be in (0, 1], got {value!r}')
  return float(value)


def positive_finite(value, name: str) -> float:
  """``value`` as a float; ``ValueError`` unless it is positive and finite."""
  if not (math.isfinite(value) and value > 0):
    raise ValueError(f'{qualified(name)} must be positive and finite, got {value!r}')
  return float(value)
