"""The results writer every experiment uses: ``config.json``, ``metrics.jsonl``, ``results.json`` and figures.

A run directory holds

- ``config.json``: the configuration the run used, written when the writer is made;
- ``metrics.jsonl``: one JSON object per line (a logged step, a finished method, a headline record);
- ``results.json``: everything the run computed, as one JSON object;
- ``<name>.png``: figures; ``<name>.txt``: tables as printed.

Values go through :func:`jsonable` (NumPy arrays and scalars become lists and numbers; NaN and inf become
``null``), so a result dict straight from a computation can be written as it is.

>>> import tempfile, numpy as np, ml_collections
>>> workdir = tempfile.mkdtemp()
>>> w = Writer(workdir, ml_collections.ConfigDict({'steps': 3}))
>>> w.metrics([{'step': 1, 'loss': np.float32(0.5)}, {'step': 2, 'loss': float('nan')}])
>>> read_jsonl(w.path('metrics.jsonl'))
[{'step': 1, 'loss': 0.5}, {'step': 2, 'loss': None}]
"""

from __future__ import annotations

import itertools
import json
import os
from typing import Any, Iterable

import jax
import numpy as np


def jsonable(x: Any) -> Any:
  """Nested dicts, lists and tuples of NumPy arrays and scalars as plain JSON values (NaN and inf -> None)."""
  if isinstance(x, dict):
    return {str(k): jsonable(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [jsonable(v) for v in x]
  if isinstance(x, np.ndarray) or hasattr(x, '__array__') and hasattr(x, 'dtype') and hasattr(x, 'shape'):
    return jsonable(np.asarray(x).tolist())
  if isinstance(x, (np.floating, float)):
    return float(x) if np.isfinite(x) else None
  if isinstance(x, (np.integer, np.bool_)):
    return x.item()
  return x


def json_lines(records: Iterable[dict]) -> str:
  """Records as JSON, one a line."""
  return '\n'.join(json.dumps(jsonable(r)) for r in records)


def cell(value: Any) -> str:
  """A value as a table cell: numbers to 4 significant digits, short lists in full, long ones by their length."""
  value = jsonable(value)
  if value is None:
    return '-'
  if isinstance(value, bool) or isinstance(value, str):
    return str(value)
  if isinstance(value, float):
    return f'{value:.4g}'
  if isinstance(value, list):
    flat = all(not isinstance(v, (list, dict)) for v in value)
    return f'[{", ".join(cell(v) for v in value)}]' if flat and len(value) <= 4 else f'[{len(value)} values]'
  if isinstance(value, dict):
    return f'{{{len(value)} fields}}'
  return str(value)


def headline_table(records: Iterable[dict], width: int = 120) -> str:
  """Headline records as the table a script prints: records with the same fields, one after another, share a
  header (one row each); a group wider than ``width`` columns is printed field by field.

  >>> print(headline_table([{'case': 'a', 'rate': 0.51234, 'ok': True}, {'case': 'b', 'rate': 2.0, 'ok': False}]))
  case  rate    ok
  ----  ------  -----
  a     0.5123  True
  b     2       False
  """
  blocks = []
  for keys, group in itertools.groupby(records, key=lambda r: tuple(r)):
    rows = [[cell(r[k]) for k in keys] for r in group]
    sizes = [max(len(k), *(len(row[i]) for row in rows)) for i, k in enumerate(keys)]
    if sum(sizes) + 2 * len(sizes) <= width:
      lines = [keys, ['-' * n for n in sizes], *rows]
      blocks.append('\n'.join('  '.join(c.ljust(n) for c, n in zip(line, sizes)).rstrip() for line in lines))
    else:
      pad = max(len(k) for k in keys)
      blocks += ['\n'.join(f'{k.ljust(pad)}  {c}' for k, c in zip(keys, row)) for row in rows]
  return '\n\n'.join(blocks)


def read_jsonl(path: str) -> list[dict]:
  """The rows of a ``metrics.jsonl`` file."""
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def config_json(config) -> str:
  """A config (``ml_collections.ConfigDict`` or a dict) as indented JSON."""
  if hasattr(config, 'to_json_best_effort'):
    return config.to_json_best_effort(indent=2)
  return json.dumps(jsonable(config), indent=2)


def _figure_of(obj):
  """The matplotlib figure behind a figure, an axes, or an array or tuple of axes (None: the current one)."""
  import matplotlib.pyplot as plt
  if obj is None:
    return plt.gcf()
  if isinstance(obj, (tuple, list, np.ndarray)):
    return _figure_of(np.asarray(obj, dtype=object).flat[0])
  return obj if hasattr(obj, 'savefig') else obj.figure


class Writer:
  """Writes one run's files under ``workdir``.

  Args:
    workdir: the run directory (created).
    config: the run's configuration, written to ``config.json`` at once.
    resume_step: when resuming a run, keep the metric rows logged at or before this step (rows without a
      ``step`` are kept) and append after them, so the file reads as if the run had never stopped; ``None``
      starts ``metrics.jsonl`` empty.

  Across processes (``experiments/launch.py``) only process 0 writes; on the others every method does nothing.
  """

  def __init__(self, workdir: str, config, *, resume_step: int | None = None):
    self.workdir = workdir
    self.active = jax.process_index() == 0
    if not self.active:
      return
    os.makedirs(workdir, exist_ok=True)
    with open(self.path('config.json'), 'w') as f:
      f.write(config_json(config))
    metrics = self.path('metrics.jsonl')
    kept = []
    if resume_step is not None and os.path.exists(metrics):
      kept = [r for r in read_jsonl(metrics) if r.get('step', 0) <= resume_step]
    with open(metrics, 'w') as f:
      f.writelines(json.dumps(r) + '\n' for r in kept)

  def path(self, name: str) -> str:
    return os.path.join(self.workdir, name)

  def metrics(self, rows: Iterable[dict]) -> None:
    """Appends rows to ``metrics.jsonl`` (flushed at once: a crash loses no logged row)."""
    if not self.active:
      return
    with open(self.path('metrics.jsonl'), 'a') as f:
      for row in rows:
        f.write(json.dumps(jsonable(row)) + '\n')

  def results(self, results: dict, name: str = 'results.json') -> None:
    """Writes everything the run computed as one JSON object."""
    if not self.active:
      return
    with open(self.path(name), 'w') as f:
      json.dump(jsonable(results), f, indent=1)

  def text(self, text: str, name: str = 'table.txt') -> None:
    if not self.active:
      return
    with open(self.path(name), 'w') as f:
      f.write(text.rstrip('\n') + '\n')

  def figure(self, fig, name: str, dpi: int = 120) -> None:
    """Saves a figure (or the figure of an axes, or of an array of axes) as ``name`` and closes it."""
    import matplotlib.pyplot as plt
    fig = _figure_of(fig)
    if not self.active:
      plt.close(fig)
      return
    fig.tight_layout()
    fig.savefig(self.path(name), dpi=dpi)
    plt.close(fig)
