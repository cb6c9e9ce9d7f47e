"""``jsonable(x)``: nested dicts / lists of NumPy arrays and scalars as plain JSON values (NaN/inf -> null)."""

from __future__ import annotations

import numpy as np


def jsonable(x):
  if isinstance(x, dict):
    return {str(k): jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [jsonable(v) for v in x]
  if isinstance(x, np.ndarray):
    return jsonable(x.tolist())
  if isinstance(x, (np.floating, float)):
    return float(x) if np.isfinite(x) else None
  if isinstance(x, (np.integer, np.bool_)):
    return x.item()
  return x
