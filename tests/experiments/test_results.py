"""The results writer every experiment uses: config.json, metrics.jsonl, results.json, tables and figures."""

import json

import jax.numpy as jnp
import matplotlib
import ml_collections
import numpy as np

from experiments.lib.common import results

matplotlib.use('Agg')


def test_jsonable_turns_arrays_and_non_finite_numbers_into_json():
  value = {'a': np.arange(3), 'b': jnp.ones(2), 'c': (np.float32(1.5), float('inf')), 1: np.bool_(True),
           'd': [np.int64(7), {'e': float('nan')}]}
  assert results.jsonable(value) == {'a': [0, 1, 2], 'b': [1.0, 1.0], 'c': [1.5, None], '1': True,
                                     'd': [7, {'e': None}]}


def test_writer_writes_every_file(tmp_path):
  import matplotlib.pyplot as plt
  w = results.Writer(str(tmp_path), ml_collections.ConfigDict({'steps': 3, 'name': 'x'}))
  assert json.load(open(tmp_path / 'config.json')) == {'steps': 3, 'name': 'x'}
  w.metrics([{'step': 1, 'loss': np.float32(2.0)}])
  w.metrics([{'step': 2, 'loss': jnp.asarray(1.0)}])
  w.results({'curve': np.linspace(0, 1, 3)})
  w.text('a table')
  _, axes = plt.subplots(1, 2)
  w.figure(axes, 'plot.png')  # an array of axes is enough
  assert results.read_jsonl(w.path('metrics.jsonl')) == [{'step': 1, 'loss': 2.0}, {'step': 2, 'loss': 1.0}]
  assert json.load(open(tmp_path / 'results.json')) == {'curve': [0.0, 0.5, 1.0]}
  assert open(tmp_path / 'table.txt').read() == 'a table\n'
  assert (tmp_path / 'plot.png').stat().st_size > 0 and not plt.get_fignums()


def test_a_resumed_writer_drops_the_rows_after_its_step(tmp_path):
  config = ml_collections.ConfigDict({'steps': 30})
  w = results.Writer(str(tmp_path), config)
  w.metrics([{'step': s, 'loss': 1.0 / s} for s in (5, 10, 15)] + [{'note': 'no step'}])
  results.Writer(str(tmp_path), config, resume_step=10)
  assert [r.get('step') for r in results.read_jsonl(tmp_path / 'metrics.jsonl')] == [5, 10, None]
  results.Writer(str(tmp_path), config)  # a fresh run starts empty
  assert results.read_jsonl(tmp_path / 'metrics.jsonl') == []
