"""Paper claims that experiments reproduce, and the small stored results that back ``REPRODUCTIONS.md``.

An experiment declares its claims next to its code (``CLAIMS`` in its ``experiments/lib`` module): the paper, its
arXiv id, the claim in one line, the paper's number, the preset (and config overrides) that measure it, a
``measure`` function taking the run's output to a few numbers, and an ``assess`` function taking those numbers
to our figure as text and a verdict (agree / partly / disagree) with its reason.

A run records its claims when it is started with ``--config.record=True`` and the claim's exact config (its
preset and overrides, nothing else changed): it then writes ``experiments/results/<claim id>.json`` holding the
measured numbers, the command, the preset and the date. These files are committed; ``python -m
experiments.reproductions`` turns them into ``REPRODUCTIONS.md``. A recording run with any other config fails
before it starts, so a stored number always comes from the command printed next to it.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib
import json
import os
import time
from typing import Any, Callable, Mapping

from experiments.lib.common import results as results_lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
RESULTS_DIR = os.path.join(ROOT, 'experiments', 'results')
VERDICTS = ('agree', 'partly', 'disagree')


@dataclasses.dataclass(frozen=True)
class Assessment:
  ours: str      # our number, as it reads in the table
  verdict: str   # one of VERDICTS
  why: str       # one short sentence: what agrees, what does not


@dataclasses.dataclass(frozen=True)
class Claim:
  """One claim of a paper that an experiment measures.

  Attributes:
    id: a short name, also the stored file's name (``experiments/results/<id>.json``).
    experiment: the script, ``python -m experiments.<experiment>``.
    title: the row's label in the table.
    paper: authors and year.
    arxiv: the arXiv id.
    claim: the claim, in one line.
    paper_number: the paper's number (or its qualitative statement), as text.
    measure: the run's output -> a small dict of JSON numbers (what is stored).
    assess: the stored dict -> :class:`Assessment`.
    preset: the config preset that measures it.
    overrides: config fields set on the command line (dotted keys for nested configs).
  """

  id: str
  experiment: str
  title: str
  paper: str
  arxiv: str
  claim: str
  paper_number: str
  measure: Callable[[Any], Mapping[str, Any]]
  assess: Callable[[Mapping[str, Any]], Assessment]
  preset: str = ''
  overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  def config(self):
    """The config this claim is measured with (``record`` left False)."""
    module = importlib.import_module(f'experiments.configs.{self.experiment}')
    config = module.get_config(self.preset)
    for key, value in self.overrides.items():
      *parents, leaf = key.split('.')
      node = config
      for p in parents:
        node = node[p]
      if leaf not in node:
        raise KeyError(f'claim {self.id!r} overrides {key!r}, which experiments/configs/{self.experiment}.py lacks')
      node[leaf] = value
    return config

  def command(self) -> str:
    """The command line that measures and records this claim."""
    parts = [f'python -m experiments.{self.experiment}',
             f'--config=experiments/configs/{self.experiment}.py' + (f':{self.preset}' if self.preset else '')]
    parts += [f'--config.{k}={v}' for k, v in self.overrides.items()]
    return ' '.join(parts + ['--config.record=True'])


def _plain(config) -> dict:
  d = config.to_dict() if hasattr(config, 'to_dict') else dict(config)
  d = json.loads(json.dumps(results_lib.jsonable(d)))  # tuples and lists compare alike
  d.pop('record', None)
  return d


def differences(config, claim: Claim) -> list[str]:
  """Dotted names of the fields where ``config`` differs from the claim's config (``record`` ignored)."""
  out = []

  def walk(a, b, prefix):
    for k in sorted(set(a) | set(b)):
      x, y = a.get(k), b.get(k)
      if isinstance(x, dict) and isinstance(y, dict):
        walk(x, y, f'{prefix}{k}.')
      elif x != y:
        out.append(f'{prefix}{k}')

  walk(_plain(config), _plain(claim.config()), '')
  return out


def to_record(claims, config) -> list[Claim]:
  """The claims a run records: none unless ``config.record``; then those whose config it is, or a ValueError
  naming the commands that would record (checked before the run starts, so no run time is wasted)."""
  if not config.get('record', False):
    return []
  matching = [c for c in claims if not differences(config, c)]
  if not matching:
    known = '\n  '.join(f'{c.id}: {c.command()}  (differs in {", ".join(differences(config, c)) or "-"})'
                        for c in claims) or 'none'
    raise ValueError('--config.record=True records a claim only with its exact config; claims of this '
                     f'experiment:\n  {known}')
  return matching


def record(claims, outputs, *, started: float | None = None, results_dir: str = RESULTS_DIR) -> list[str]:
  """Measures each claim on the run's outputs and writes ``<results_dir>/<id>.json``; returns the paths."""
  os.makedirs(results_dir, exist_ok=True)
  paths = []
  for claim in claims:
    stored = {'claim': claim.id, 'measured': results_lib.jsonable(dict(claim.measure(outputs))),
              'command': claim.command(), 'preset': claim.preset or 'default',
              'date': datetime.date.today().isoformat()}
    if started is not None:
      stored['seconds'] = round(time.perf_counter() - started)
    path = os.path.join(results_dir, f'{claim.id}.json')
    with open(path, 'w') as f:
      json.dump(stored, f, indent=1)
      f.write('\n')
    paths.append(path)
    print(f'recorded {claim.id}: {claim.assess(stored["measured"]).ours} -> {os.path.relpath(path, ROOT)}',
          flush=True)
  return paths


def load(claim_id: str, results_dir: str = RESULTS_DIR) -> dict | None:
  """The stored result of a claim, or None if it was never recorded."""
  path = os.path.join(results_dir, f'{claim_id}.json')
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)
