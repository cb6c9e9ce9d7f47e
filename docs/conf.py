"""Sphinx configuration of polyak's documentation: the house, getting started, the API reference and the ledger.

Build with ``python -m sphinx -W --keep-going -j 2 docs /tmp/polyak-docs`` (tests/test_docs.py does, so a
docstring that breaks the build fails the tests). The API pages list every module of a package through the
``automodules`` directive below, so a new module appears without editing the docs.
"""

import importlib
import os
import pkgutil
import re
import sys

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault('JAX_PLATFORMS', 'cpu')  # importing the packages must not look for accelerators

project = 'polyak'
author = 'the polyak authors'
copyright = '2026, the polyak authors'
extensions = ['sphinx.ext.autodoc', 'sphinx.ext.napoleon', 'sphinx.ext.mathjax', 'myst_parser']
source_suffix = {'.rst': 'restructuredtext', '.md': 'markdown'}
exclude_patterns = ['_build']
html_theme = 'furo'
html_title = 'polyak'

autodoc_member_order = 'bysource'
autodoc_typehints = 'none'  # signatures carry the types; repeating them in every description is noise
# members defined in the module itself (a package's __all__ re-exports them: they are documented where defined)
autodoc_default_options = {'members': True, 'ignore-module-all': True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True  # 'Attributes:' as fields: a NamedTuple's fields are documented once, as members
myst_heading_anchors = 3
suppress_warnings = ['myst.xref_missing']  # README links to files of the repository (tests/, experiments/)


def submodules(package: str) -> list[str]:
  """``package`` and every module below it, in import order (a package before its modules)."""
  pkg = importlib.import_module(package)
  names = [package]
  if hasattr(pkg, '__path__'):
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: (i.ispkg, i.name)):
      names += submodules(f'{package}.{info.name}')
  return names


# Imported once here, before Sphinx forks its readers (-j 2), so each does not import JAX and the packages again.
MODULES = {package: submodules(package) for package in ('optim', 'decentral', 'theory')}


class AutoModules(SphinxDirective):
  """``.. automodules:: optim``: an ``automodule`` section for the package and for each module below it."""

  required_arguments = 1

  def run(self):
    lines = []
    package = self.arguments[0]
    for name in MODULES.get(package) or submodules(package):
      lines += [name, '-' * len(name), '', f'.. automodule:: {name}', '']
    section = nodes.section()
    section.document = self.state.document
    self.state.nested_parse(StringList(lines, source=f'automodules:{self.arguments[0]}'), self.content_offset,
                            section, match_titles=True)
    return section.children


_LITERAL = re.compile(r'(``.*?``|:math:`[^`]*`|`[^`]*`)')  # inline literals, math and interpreted text
_BAR = re.compile(r'(?<!\\)\|')  # a bar not escaped already


def literal_bars(app, what, name, obj, options, lines):
  """Docstrings here write norms as ``|x|`` in plain text and use no RST substitutions: escape the bars outside
  literals, math, literal blocks and doctests, so ``|x|`` reads as written instead of breaking the build."""
  block = None  # the indentation of the line that opened the literal block, math block or doctest being skipped
  for i, line in enumerate(lines):
    text = line.lstrip()
    indent = len(line) - len(text)
    if block is not None:
      if block == 'doctest':
        if text:
          continue
        block = None
      elif not text or indent > block:
        continue
      else:
        block = None
    if text.startswith('>>>'):
      block = 'doctest'
      continue
    if text.startswith('.. '):  # a directive (``.. math:: x``): its line and its indented body are left alone
      block = indent
      continue
    if text.endswith('::'):
      block = indent
    lines[i] = ''.join(part if _LITERAL.fullmatch(part) else _BAR.sub(r'\\|', part) for part in _LITERAL.split(line))


def setup(app):
  app.add_directive('automodules', AutoModules)
  app.connect('autodoc-process-docstring', literal_bars)
  return {'parallel_read_safe': True, 'parallel_write_safe': True}
