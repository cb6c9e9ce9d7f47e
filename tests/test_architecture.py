"""The import rules of the design, checked on the source: they are what keeps the folder list the architecture.

* ``optim`` imports neither ``decentral`` nor ``theory``; ``decentral`` never imports ``theory``;
* no package imports itself through its top (``import decentral`` inside ``decentral/``): a module imports the
  module it needs, so the package ``__init__`` stays a list of exports, not a hub every module runs through;
* nothing imports ``experiments`` but tests and notebooks (``benchmarks/`` and the packages stand alone);
* no module is named like a function its package exports (``optim.lanczos`` the function would shadow
  ``optim.lanczos`` the module);
* importing the packages starts no JAX backend (no array built at import time), so a multi-process run can still
  call ``jax.distributed.initialize`` after its imports.
"""

import ast
import importlib
import pathlib
import pkgutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ('optim', 'decentral', 'theory')
FORBIDDEN = {'optim': {'decentral', 'theory', 'experiments'}, 'decentral': {'theory', 'experiments'},
             'theory': {'experiments'}, 'benchmarks': {'experiments'}}


def _imported_modules(path: pathlib.Path) -> list[tuple[int, str, tuple[str, ...]]]:
  """(line, module, names) for every import statement of a file; ``names`` for ``from m import a, b``."""
  found = []
  for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
    if isinstance(node, ast.Import):
      found += [(node.lineno, alias.name, ()) for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      found.append((node.lineno, node.module, tuple(a.name for a in node.names)))
  return found


def _files(folder: str) -> list[pathlib.Path]:
  return sorted((ROOT / folder).rglob('*.py'))


@pytest.mark.parametrize('folder', sorted(FORBIDDEN))
def test_imports_run_one_way(folder):
  bad = [f'{path.relative_to(ROOT)}:{line} imports {module}'
         for path in _files(folder) for line, module, _ in _imported_modules(path)
         if module.split('.')[0] in FORBIDDEN[folder]]
  assert not bad, '\n'.join(bad)


@pytest.mark.parametrize('package', PACKAGES)
def test_no_module_imports_its_own_package_top(package):
  submodules = {p.stem for p in (ROOT / package).iterdir() if p.is_dir() or p.suffix == '.py'}
  bad = []
  for path in _files(package):
    if path == ROOT / package / '__init__.py':
      continue
    for line, module, names in _imported_modules(path):
      exported = [n for n in names if n not in submodules]
      if module == package and (not names or exported):
        bad.append(f'{path.relative_to(ROOT)}:{line} imports the package top ({module}: {exported or "all"})')
  assert not bad, '\n'.join(bad)


@pytest.mark.parametrize('package', PACKAGES)
def test_no_module_is_shadowed_by_an_export(package):
  bad = []
  for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f'{package}.'):
    parent_name, _, child = info.name.rpartition('.')
    value = getattr(importlib.import_module(parent_name), child, None)
    if value is not None and getattr(value, '__name__', None) != info.name:
      bad.append(f'{parent_name}.{child} is {value!r}, which hides the module {info.name}')
  assert not bad, '\n'.join(bad)


def test_test_files_have_unique_basenames():
  # tests/ has no __init__.py files (pytest's rootdir import mode), so two test files of one name clash.
  seen = {}
  for path in (ROOT / 'tests').rglob('test_*.py'):
    seen.setdefault(path.name, []).append(str(path.relative_to(ROOT)))
  clashes = {name: paths for name, paths in seen.items() if len(paths) > 1}
  assert not clashes, clashes


def test_importing_the_packages_starts_no_backend():
  # A fresh interpreter: in this one the tests have long started a backend.
  code = ('import optim, decentral, theory\n'
          'from jax._src import xla_bridge\n'
          'assert not xla_bridge._backends, "a module builds a JAX array at import time"\n')
  done = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert done.returncode == 0, done.stderr[-3000:]
