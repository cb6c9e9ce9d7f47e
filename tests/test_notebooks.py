"""Every notebook in colab/ runs top to bottom, and its .ipynb matches its paired jupytext .py."""

import glob
import os

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, 'colab', '*.ipynb')))


def test_there_are_notebooks():
  assert any(p.endswith('quickstart.ipynb') for p in NOTEBOOKS)


@pytest.mark.parametrize('path', NOTEBOOKS, ids=os.path.basename)
def test_notebook_is_paired_with_its_py(path):
  paired = path[:-len('.ipynb')] + '.py'
  assert os.path.exists(paired), f'{path} has no paired jupytext .py'
  cells = lambda nb: [(c.cell_type, c.source.strip()) for c in nb.cells]
  assert cells(nbformat.read(path, as_version=4)) == cells(jupytext.read(paired)), (
      f'{os.path.basename(path)} and its .py differ: run `jupytext --sync {paired}`')


INSTALL = """if 'google.colab' in sys.modules:  # Colab only: fetch the repository (notebooks import its experiments/)
  import os
  import subprocess
  subprocess.run(['git', 'clone', '-q', 'https://github.com/polyak-dev/polyak'], check=False)
  os.chdir('polyak')
  subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '-e', '.'], check=True)"""


@pytest.mark.parametrize('path', NOTEBOOKS, ids=os.path.basename)
def test_notebook_installs_the_one_way(path):
  # One install cell for every notebook: a clone (experiments/ is not in the wheel) and an editable install.
  sources = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == 'code']
  assert any(INSTALL in s for s in sources), f'{os.path.basename(path)} does not install polyak the common way'


@pytest.mark.parametrize('path', NOTEBOOKS, ids=os.path.basename)
def test_notebook_executes(path):
  nb = nbformat.read(path, as_version=4)
  NotebookClient(nb, timeout=600, kernel_name='python3', resources={'metadata': {'path': ROOT}}).execute()
  errors = [o for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', []) if o.output_type == 'error']
  assert not errors
