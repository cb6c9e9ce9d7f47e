"""Every speed benchmark of the house in one run: each section's table, then each against the stored numbers.

    python benchmarks/run.py                      # all sections; the anchors where their environments exist
    python benchmarks/run.py --quick              # small sizes, one or two rounds, no anchors: a smoke run
    python benchmarks/run.py --sections=aggregation,refresh
    python benchmarks/run.py --record             # store this run's numbers in benchmarks/results/*.json

Sections (each its own script, run as a subprocess so that one's flags, float64 switch or crash cannot touch
another's):

* ``aggregation``: robust rules against ByzFL (``/tmp/venv-byzfl``) and the machine's floor
  (``bench_aggregation.py``);
* ``curvature``: HVP, top eigenvalues, trace and SLQ against PyHessian (``/tmp/venv-pyhessian``) and ARPACK
  (``bench_curvature.py``);
* ``elementwise``: element-wise optimizers against ``optax.adam`` in step time and XLA's bytes
  (``bench_elementwise.py``);
* ``refresh``: Sophia's refresh step against ``optax.contrib.sophia``'s and FRUGAL's SVD refresh
  (``bench_refresh.py``).

Each section prints its own table (against its anchor when the anchor's scratch environment exists, which the
header says), with the load average before and after it. Then every measured time is compared with the
project's previous numbers in ``benchmarks/results/<section>.json``: a time more than 1.5x the stored one is
marked ``REGRESSION`` (read it beside the two load averages: on a shared machine a busy neighbour slows
everything). The scripts run from a temporary copy of this folder, so that their ``--record`` writes there and
the stored numbers change only with ``--record`` here. Not a test: timings never gate CI.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Callable

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, 'results')
REPO = os.path.dirname(HERE)
REGRESSION = 1.5  # a time this many times the stored one is marked
MISSING = '/nonexistent/python'  # an anchor's interpreter that does not exist: the script runs without it


def _aggregation_times(record: dict) -> dict:
  return {f'{c["rule"]} n={c["n"]} d={c["d"]:.0e}': c['polyak_ms'] / 1e3 for c in record.get('cells', [])}


def _curvature_times(record: dict) -> dict:
  return {f'{r["dtype"]} {r["task"]}': r['seconds'] for r in record.get('rows', [])}


def _refresh_times(record: dict) -> dict:
  return {r['step']: r['seconds'] for r in record.get('rows', [])}


def _elementwise_rows(stdout: str) -> list[dict]:
  """The rows of bench_elementwise's table: after its header (the line naming ``ms/step``), every line that
  starts with an optimizer's name, its ms/step and its ratio to adam."""
  rows, table = [], False
  for line in stdout.splitlines():
    words = line.split()
    if 'ms/step' in words:
      table = True
      continue
    try:
      ms, vs_adam = float(words[1]), float(words[2])
    except (IndexError, ValueError):
      continue
    if table:
      rows.append(dict(optimizer=words[0], seconds=ms / 1e3, vs_adam=vs_adam))
  return rows


def _elementwise_times(record: dict) -> dict:
  return {r['optimizer']: r['seconds'] for r in record.get('rows', [])}


@dataclasses.dataclass(frozen=True)
class Section:
  """One benchmark script: how to run it in full and quick, its anchor, and how to read its times."""
  name: str
  script: str
  full: tuple[str, ...]
  quick: tuple[str, ...]
  times: Callable[[dict], dict]  # stored or fresh record -> {cell: seconds}
  anchor: str = ''  # the anchor's python; '' when the section's anchor is optax, in this environment
  anchor_flag: str = ''  # the script's flag naming that python
  records: bool = True  # the script writes results/<name>.json itself with --record (else run.py parses it)

  def command(self, folder: str, quick: bool, anchors: bool) -> list[str]:
    args = list(self.quick if quick else self.full)
    if self.anchor_flag:
      args.append(f'{self.anchor_flag}={self.anchor if anchors else MISSING}')
    if self.records:
      args.append('--record')
    return [sys.executable, os.path.join(folder, self.script), *args]


SECTIONS = (
    Section('aggregation', 'bench_aggregation.py', (), ('--n=8', '--d=1e4', '--rules=mean,median,krum',
                                                       '--rounds=1', '--repeats=1'),
            _aggregation_times, '/tmp/venv-byzfl/bin/python', '--byzfl-python'),
    Section('curvature', 'bench_curvature.py', (), ('--dtypes=float32', '--rounds=1', '--top1_steps=5',
                                                   '--top10_steps=20', '--slq_steps=10', '--probes=4'),
            _curvature_times, '/tmp/venv-pyhessian/bin/python', '--pyhessian_python'),
    Section('elementwise', 'bench_elementwise.py', (), ('--width=32', '--rounds=2',
                                                       '--optimizers=adam,diffgrad,adabelief'),
            _elementwise_times, records=False),
    Section('refresh', 'bench_refresh.py', (), ('--quick',), _refresh_times),
)


def load_average() -> str:
  return ' '.join(f'{v:.1f}' for v in os.getloadavg())


def run_section(section: Section, folder: str, quick: bool, anchors: bool) -> tuple[dict | None, float]:
  """Runs one script, echoing its output indented; returns its fresh record (None if it failed) and seconds."""
  anchor = ''
  if section.anchor:
    found = anchors and os.path.exists(section.anchor)
    anchor = f'; anchor {section.anchor}: {"yes" if found else "absent, so against the stored numbers"}'
  print(f'\n== {section.name} ({section.script}{anchor}); load average {load_average()}', flush=True)
  start = time.perf_counter()
  proc = subprocess.Popen(section.command(folder, quick, anchors), cwd=REPO, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
  lines = []
  for line in proc.stdout:
    lines.append(line)
    print('   ' + line, end='', flush=True)
  proc.wait()
  seconds = time.perf_counter() - start
  print(f'== {section.name}: {seconds:.0f} s; load average {load_average()}', flush=True)
  if proc.returncode != 0:
    print(f'== {section.name} FAILED (exit code {proc.returncode})')
    return None, seconds
  if section.records:
    path = os.path.join(folder, 'results', f'{section.name}.json')
    if not os.path.exists(path):
      return None, seconds
    with open(path) as fh:
      return json.load(fh), seconds
  return dict(date=datetime.date.today().isoformat(), load_average=list(os.getloadavg()),
              rows=_elementwise_rows(''.join(lines))), seconds


def stored_record(section: Section) -> dict:
  path = os.path.join(RESULTS, f'{section.name}.json')
  if not os.path.exists(path):
    return {}
  with open(path) as fh:
    return json.load(fh)


def _stored_load(record: dict) -> str:
  load = record.get('load_average')
  if not load:
    loads = [c.get('load_average') for c in record.get('cells', []) if c.get('load_average')]
    load = loads[-1] if loads else None
  return ' '.join(f'{v:.1f}' for v in load[:3]) if load else '?'


def compare(section: Section, fresh: dict, stored: dict) -> dict:
  """Prints each fresh time beside the stored one; returns counts for the summary."""
  now, before = section.times(fresh), section.times(stored)
  common = [k for k in now if before.get(k)]
  print(f'\n{section.name} against benchmarks/results/{section.name}.json (stored {stored.get("date", "?")}, '
        f'load {_stored_load(stored)}):')
  if not common:
    print('   no stored numbers for these cells')
    return dict(cells=len(now), compared=0, regressions=0, ratio=None)
  width = max(len(k) for k in common)
  regressions = 0
  print(f'   {"cell":>{width}s} {"now s":>10s} {"stored s":>10s} {"ratio":>7s}')
  for k in common:
    ratio = now[k] / before[k]
    mark = 'REGRESSION' if ratio > REGRESSION else ('faster' if ratio < 1 / REGRESSION else '')
    regressions += mark == 'REGRESSION'
    print(f'   {k:>{width}s} {now[k]:10.4f} {before[k]:10.4f} {ratio:6.2f}x {mark}')
  ratios = sorted(now[k] / before[k] for k in common)
  return dict(cells=len(now), compared=len(common), regressions=regressions, ratio=ratios[len(ratios) // 2])


def store(section: Section, fresh: dict) -> None:
  """Writes the fresh record; cells keyed like the stored ones replace them, the others stay (aggregation)."""
  path = os.path.join(RESULTS, f'{section.name}.json')
  stored = stored_record(section)
  if 'cells' in fresh and stored.get('cells'):
    keys = set(section.times(fresh))
    kept = [c for c in stored['cells'] if next(iter(section.times({'cells': [c]}))) not in keys]
    fresh = dict(fresh, cells=kept + fresh['cells'])
  os.makedirs(RESULTS, exist_ok=True)
  with open(path, 'w') as fh:
    json.dump(fresh, fh, indent=1)
    fh.write('\n')


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--sections', default=','.join(s.name for s in SECTIONS))
  parser.add_argument('--quick', action='store_true', help='small sizes, no anchors: a smoke run')
  parser.add_argument('--no-anchors', action='store_true', help='skip ByzFL and PyHessian even when installed')
  parser.add_argument('--record', action='store_true', help='store the numbers in benchmarks/results/')
  args = parser.parse_args(argv)
  by_name = {s.name: s for s in SECTIONS}
  names = [n for n in args.sections.split(',') if n]
  if set(names) - set(by_name):
    parser.error(f'unknown sections {sorted(set(names) - set(by_name))}; known: {", ".join(by_name)}')
  if args.record and args.quick:
    parser.error('--record stores full runs only (quick numbers are not comparable)')
  anchors = not (args.quick or args.no_anchors)
  print(f'benchmarks: {", ".join(names)}; {"quick, " if args.quick else ""}{os.cpu_count()} cpus; '
        f'load average {load_average()}', flush=True)
  summary, failed = [], []
  with tempfile.TemporaryDirectory() as folder:
    for name in os.listdir(HERE):
      if name.endswith('.py'):
        shutil.copy(os.path.join(HERE, name), folder)
    os.makedirs(os.path.join(folder, 'results'))
    for name in names:
      section = by_name[name]
      fresh, seconds = run_section(section, folder, args.quick, anchors)
      if fresh is None:
        failed.append(name)
        continue
      if args.quick:  # other sizes than the stored full runs: a ratio would mean nothing
        print(f'\n{section.name}: quick run, not compared with benchmarks/results/{section.name}.json')
        counts = dict(cells=len(section.times(fresh)), compared=0, regressions=0, ratio=None)
      else:
        counts = compare(section, fresh, stored_record(section))
      summary.append((name, seconds, counts))
      if args.record:
        store(section, fresh)
  print(f'\n{"section":>12s} {"seconds":>8s} {"cells":>6s} {"compared":>9s} {"median now/stored":>18s} '
        f'{"regressions":>12s}   load average now {load_average()}')
  for name, seconds, c in summary:
    ratio = f'{c["ratio"]:.2f}x' if c['ratio'] is not None else '-'
    print(f'{name:>12s} {seconds:8.0f} {c["cells"]:6d} {c["compared"]:9d} {ratio:>18s} {c["regressions"]:12d}')
  for name in failed:
    print(f'{name:>12s} FAILED')
  return 1 if failed else 0


if __name__ == '__main__':
  sys.exit(main())
