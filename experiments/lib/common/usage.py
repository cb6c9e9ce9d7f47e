"""Mistakes on the command line, told in one line: an unknown config field or name, with the nearest valid ones.

An entry point turns a :class:`UsageError` into ``error: <message>`` on stderr and exit status 2, not a
traceback (``experiments/lib/common/script.py``). The checks here run before anything is trained or written.

>>> nearest('moomentum', ['momentum', 'nesterov', 'learning_rate'])
['momentum']
>>> print(unknown('optimizer', 'adma', ['adam', 'adamw', 'sgd']))
unknown optimizer 'adma'; nearest: adam, adamw
"""

from __future__ import annotations

import difflib
import importlib.util
import os
from typing import Iterable, Sequence


class UsageError(ValueError):
  """A mistake in the command line or the config: the script prints its message as one line."""


def nearest(name: str, known: Iterable[str], n: int = 3) -> list[str]:
  """The ``n`` known names closest to ``name`` (difflib's ratio, at least 0.6), closest first."""
  return difflib.get_close_matches(name, sorted(set(known)), n=n, cutoff=0.6)


def unknown(what: str, name: str, known: Iterable[str]) -> UsageError:
  """``unknown <what> '<name>'; nearest: a, b`` (or every known name when none is near)."""
  known = sorted(set(known))
  close = nearest(name, known)
  hint = f'nearest: {", ".join(close)}' if close else f'known: {", ".join(known)}'
  return UsageError(f'unknown {what} {name!r}; {hint}')


def check_fields(config, paths: Iterable[str], where: str = 'config') -> None:
  """Raises a :class:`UsageError` for the first dotted path (``optimizer.momentum``) that ``config`` lacks."""
  for path in paths:
    node, seen = config, []
    for key in path.split('.'):
      if not hasattr(node, 'keys') or key not in node:
        fields = sorted(node.keys()) if hasattr(node, 'keys') else []
        prefix = ''.join(f'{k}.' for k in seen)
        close = nearest(key, fields) or fields
        hint = 'nearest' if nearest(key, fields) else 'known'
        raise UsageError(f'unknown {where} field {prefix + key!r}; {hint}: {", ".join(prefix + f for f in close)}')
      node, seen = node[key], seen + [key]


def overrides(argv: Sequence[str], flag: str = 'config') -> tuple[str | None, list[str]]:
  """The ``--<flag>=path[:preset]`` value and the dotted fields of the ``--<flag>.a.b=v`` overrides in ``argv``.

  >>> overrides(['--config', 'c.py:smoke', '--config.steps=3', '--config.optimizer.b1', '0.5', '--workdir=/tmp'])
  ('c.py:smoke', ['steps', 'optimizer.b1'])
  """
  value, fields = None, []
  for arg, following in zip(argv, [*argv[1:], None]):
    if arg.startswith(f'--{flag}='):
      value = arg.split('=', 1)[1]
    elif arg == f'--{flag}':
      value = following
    elif arg.startswith(f'--{flag}.'):
      fields.append(arg[len(flag) + 3:].split('=', 1)[0])
  return value, fields


def load_config(spec: str):
  """The config of ``path[:preset]``, as ``--config`` would load it."""
  path, _, preset = spec.partition(':')
  module_spec = importlib.util.spec_from_file_location('_config_of_command_line', os.path.abspath(path))
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(preset) if preset else module.get_config()


def check_command_line(argv: Sequence[str], default_config: str, flag: str = 'config') -> None:
  """Raises a :class:`UsageError` naming the first ``--config.<field>`` override the config lacks."""
  spec, fields = overrides(argv, flag)
  if fields:
    check_fields(load_config(spec or default_config), fields, where=f'--{flag}')


def check_data_dir(config, where: str = '') -> None:
  """Every non-empty ``data_dir`` of ``config`` (nested ones too) must exist before a run writes its workdir.

  >>> check_data_dir({'steps': 3, 'dgc': {'data_dir': '/no/such/folder'}})
  Traceback (most recent call last):
  ...
  experiments.lib.common.usage.UsageError: dgc.data_dir '/no/such/folder' does not exist (empty: the bundled data)
  """
  if not hasattr(config, 'items'):
    return
  for key, value in config.items():
    if key == 'data_dir' and value and isinstance(value, str) and not os.path.exists(value):
      raise UsageError(f'{where}data_dir {value!r} does not exist (empty: the bundled data)')
    check_data_dir(value, f'{where}{key}.')
