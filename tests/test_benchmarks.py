"""The one benchmark command (benchmarks/run.py): its quick mode runs end to end; regressions are marked."""

import importlib.util
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = os.path.join(ROOT, 'benchmarks', 'run.py')


def _run_module(monkeypatch):
  spec = importlib.util.spec_from_file_location('benchmarks_run', RUN)
  module = importlib.util.module_from_spec(spec)
  monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
  spec.loader.exec_module(module)
  return module


def test_quick_mode_prints_every_table_without_anchors():
  # Two of the four sections, to stay within seconds: curvature's ARPACK reference on PyHessian's 118k-parameter
  # MLP takes tens of seconds even in quick mode; the element-wise table's reading is tested below.
  out = subprocess.run([sys.executable, RUN, '--quick', '--sections=aggregation,refresh'], cwd=ROOT,
                       capture_output=True, text=True, timeout=600, check=False)
  assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
  text = out.stdout
  assert 'anchor /tmp/venv-byzfl/bin/python: absent' in text  # quick mode never runs an anchor
  for header in ('== aggregation', '== refresh', 'load average'):
    assert header in text
  for row in ('median', 'krum', 'sophia_h refresh', 'frugal randomized refresh'):
    assert row in text, row
  summary = text[text.rindex('regressions'):]
  for name in ('aggregation', 'refresh'):
    assert name in summary
  assert 'refresh: quick run, not compared' in text  # quick sizes are not those of the stored numbers
  assert 'FAILED' not in text


def test_compare_marks_regressions_and_store_keeps_other_cells(tmp_path, capsys, monkeypatch):
  run = _run_module(monkeypatch)
  section = next(s for s in run.SECTIONS if s.name == 'aggregation')
  cell = lambda rule, ms: dict(rule=rule, n=8, d=100000, polyak_ms=ms)
  stored = dict(date='2026-01-01', cells=[cell('mean', 1.0), cell('median', 10.0), cell('krum', 4.0)])
  fresh = dict(cells=[cell('mean', 2.0), cell('median', 5.0), cell('krum', 4.4)])
  counts = run.compare(section, fresh, stored)
  lines = capsys.readouterr().out.splitlines()
  marks = {line.split()[0]: line.split()[-1] for line in lines if 'n=8' in line}
  assert marks == {'mean': 'REGRESSION', 'median': 'faster', 'krum': '1.10x'}
  assert counts['regressions'] == 1 and counts['compared'] == 3
  monkeypatch.setattr(run, 'RESULTS', str(tmp_path))
  (tmp_path / 'aggregation.json').write_text(json.dumps(stored))
  run.store(section, dict(cells=[cell('mean', 2.0)]))
  cells = json.loads((tmp_path / 'aggregation.json').read_text())['cells']
  assert sorted((c['rule'], c['polyak_ms']) for c in cells) == [('krum', 4.0), ('mean', 2.0), ('median', 10.0)]


def test_elementwise_rows_are_read_from_the_printed_table(monkeypatch):
  run = _run_module(monkeypatch)
  text = ('10.5M parameters, cpu\n'
          '   optimizer  ms/step  vs adam  cpu ms  vs adam  XLA B/p\n'
          '        adam    20.00     1.00   19.0     1.00     10.0\n'
          '    diffgrad    62.00     3.10   60.0     3.16     16.0\n'
          'load average 3.0 before\n')
  rows = run._elementwise_rows(text)
  assert [(r['optimizer'], r['seconds'], r['vs_adam']) for r in rows] == [('adam', 0.02, 1.0), ('diffgrad', 0.062, 3.1)]
