"""The progress line of long loops: k/N, the values given, and a time left that leaves compilation out."""

from experiments.lib.common import progress


def test_time_left_excludes_the_first_compiled_item(capsys):
  # Item 1 takes 100 s (compilation), every later one 1 s: after item 5 four seconds measure four items.
  times = iter([100.0, 101.0, 102.0, 103.0, 104.0, 105.0, 106.0, 107.0, 108.0, 109.0])
  p = progress.Progress(10, '[adam]', every=5, unit='step', clock=lambda: next(times))
  for k in range(1, 11):
    p(k, loss=1.0 / k)
  lines = capsys.readouterr().out.splitlines()
  assert lines == ['[adam] 5/10  loss 0.2  1.0 s/step  5s left', '[adam] 10/10  loss 0.1  1.0 s/step  done in 9s']


def test_about_ten_lines_by_default_and_fast_rates_per_second(capsys):
  times = iter(0.01 * k for k in range(1000))
  p = progress.Progress(300, 'train', unit='step', clock=lambda: next(times))
  for k in range(1, 301):
    p(k)
  lines = capsys.readouterr().out.splitlines()
  assert len(lines) == 10 and lines[-1].startswith('train 300/300') and '100.0 steps/s' in lines[-1]
  assert progress.duration(3725) == '1h02m'
