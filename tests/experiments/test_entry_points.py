"""Every experiment entry point: its ``--config`` is ``script.config_flag('<its name>')``, so an unknown
``--config.<field>`` stops it with one line naming the nearest fields, not an ml_collections traceback.

In process: ``config_flag`` checks ``sys.argv`` before it defines the flag, so a bad override exits before any flag
exists and every entry point can be tried in one interpreter.
"""

import ast
import glob
import os

import pytest

from experiments.lib.common import script, usage

ROOT = os.path.join(os.path.dirname(__file__), '..', '..')
NOT_ENTRY_POINTS = {'__init__', 'launch'}  # launch starts other entry points, with flags of its own
ENTRY_POINTS = sorted(
    name for name in (os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, 'experiments', '*.py')))
    if name not in NOT_ENTRY_POINTS)


def _config_flag_calls(name):
  """The string arguments of the ``script.config_flag(...)`` calls in ``experiments/<name>.py``."""
  with open(os.path.join(ROOT, 'experiments', f'{name}.py')) as f:
    tree = ast.parse(f.read())
  return [node.args[0].value for node in ast.walk(tree)
          if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == 'config_flag'
          and isinstance(node.func.value, ast.Name) and node.func.value.id == 'script']


def test_every_experiment_is_an_entry_point():
  assert len(ENTRY_POINTS) > 20 and {'train', 'compare', 'robust', 'sgn'} <= set(ENTRY_POINTS)


@pytest.mark.parametrize('name', ENTRY_POINTS)
def test_unknown_config_field_is_one_line_with_the_nearest_names(name, monkeypatch, capsys):
  assert _config_flag_calls(name) == [name], f'experiments/{name}.py must define --config by script.config_flag'
  field = sorted(usage.load_config(script.config_path(name)).keys())[0]
  monkeypatch.chdir(ROOT)
  monkeypatch.setattr('sys.argv', [f'experiments/{name}.py', f'--config.{field}x=1', '--workdir=/tmp/unused'])
  with pytest.raises(SystemExit) as stop:
    script.config_flag(name)  # exits before it defines the flag
  assert stop.value.code == 2
  lines = capsys.readouterr().err.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith(f"error: unknown --config field '{field}x'; nearest: {field}"), lines
