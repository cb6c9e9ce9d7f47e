"""The API docs build with warnings as errors: a docstring that breaks the reference fails here, not on the site."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_docs_build_without_warnings(tmp_path):
  for module in ('sphinx', 'furo', 'myst_parser'):  # the test extras of pyproject.toml
    pytest.importorskip(module)
  cmd = [sys.executable, '-m', 'sphinx', '-W', '--keep-going', '-j', '2', '-q', '-b', 'html',
         '-d', str(tmp_path / 'doctrees'), os.path.join(ROOT, 'docs'), str(tmp_path / 'html')]
  out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env={**os.environ, 'JAX_PLATFORMS': 'cpu', 'XLA_FLAGS': ''})
  assert out.returncode == 0, out.stderr[-5000:]
  api = (tmp_path / 'html' / 'api' / 'optim.html').read_text()
  assert 'scale_by_diffgrad' in api and 'class="math' in api  # the docstrings, and their math rendered
  assert (tmp_path / 'html' / 'reproductions.html').exists() and (tmp_path / 'html' / 'getting_started.html').exists()
