"""decentral.federated.partitions: every example placed once, the Dirichlet skew, empty classes and clients,
padding, and the by-speaker split of tiny Shakespeare."""

import os

import numpy as np
import pytest

from decentral.federated import partitions


def _labels(n_per_class=60, classes=10):
  return np.repeat(np.arange(classes), n_per_class)


def test_iid_places_every_example_once_in_near_equal_parts():
  parts = partitions.iid(103, 10, seed=1)
  assert sorted(np.concatenate(parts).tolist()) == list(range(103))
  assert {len(p) for p in parts} == {10, 11}


@pytest.mark.parametrize('alpha', [0.1, 1.0, 100.0])
def test_dirichlet_places_every_example_once(alpha):
  labels = _labels()
  parts = partitions.dirichlet(labels, 20, alpha, seed=0)
  assert len(parts) == 20
  assert sorted(np.concatenate(parts).tolist()) == list(range(labels.size))


def test_dirichlet_skew_follows_alpha():
  """The mean share of a client's largest class: about 1/2 at alpha 0.1 (10 clients), near 1/10 at alpha 100."""
  labels = _labels(200)

  def top_share(alpha):
    parts = partitions.dirichlet(labels, 10, alpha, seed=3)
    return np.mean([np.bincount(labels[p], minlength=10).max() / len(p) for p in parts if len(p)])

  assert top_share(0.1) > 0.4
  assert top_share(100.0) < 0.2
  assert top_share(0.1) > top_share(1.0) > top_share(100.0)


def test_empty_class_is_skipped_and_empty_clients_are_allowed():
  labels = np.array([0] * 30 + [2] * 30)  # class 1 has no example
  parts = partitions.dirichlet(labels, 40, 0.05, seed=0, num_classes=4)
  sizes = [len(p) for p in parts]
  assert sum(sizes) == 60 and min(sizes) == 0  # 40 clients, 2 classes, alpha 0.05: many hold nothing
  data = partitions.pad({'y': labels}, parts)
  assert data.counts.tolist() == sizes and data.arrays['y'].shape == (40, max(sizes))


def test_min_size_redraws_or_says_why():
  labels = _labels(20)
  parts = partitions.dirichlet(labels, 10, 0.5, seed=0, min_size=5)
  assert min(len(p) for p in parts) >= 5
  with pytest.raises(ValueError, match='min_size=50'):
    partitions.dirichlet(labels, 10, 0.5, seed=0, min_size=50, max_tries=3)
  with pytest.raises(ValueError, match='alpha'):
    partitions.dirichlet(labels, 10, 0.0)


def test_pad_keeps_rows_in_order_and_zeros_the_rest():
  x = np.arange(10.0)[:, None] * np.ones((1, 2))
  data = partitions.pad({'x': x, 'y': np.arange(10)}, [np.array([7, 2]), np.array([], int), np.array([1, 3, 5])])
  assert data.counts.tolist() == [2, 0, 3] and data.max_size == 3 and data.num_clients == 3
  np.testing.assert_array_equal(data.arrays['y'], [[7, 2, 0], [0, 0, 0], [1, 3, 5]])
  np.testing.assert_array_equal(data.arrays['x'][0], [[7, 7], [2, 2], [0, 0]])


TEXT = """First Citizen:
Before we proceed any further, hear me speak.

All:
Speak, speak.

First Citizen:
You are all resolved rather to die than to famish?

MENENIUS:
Why, masters, my good friends, mine honest neighbours,
Will you undo yourselves?
"""


def test_speakers_groups_blocks_by_name():
  got = partitions.speakers(TEXT)
  assert list(got) == ['First Citizen', 'All', 'MENENIUS']
  assert got['First Citizen'] == ('Before we proceed any further, hear me speak.\n'
                                  'You are all resolved rather to die than to famish?')
  assert got['MENENIUS'].endswith('undo yourselves?')


def test_by_speaker_windows_predict_the_next_character():
  clients = partitions.by_speaker(TEXT, seq_len=10, min_samples=20)
  assert clients.names == ['First Citizen', 'MENENIUS']  # 'All' has too few characters; most samples first
  text = partitions.speakers(TEXT)['First Citizen']
  x, y = clients.data.arrays['x'][0], clients.data.arrays['y'][0]
  decode = lambda ids: ''.join(clients.vocab[i] for i in ids)
  assert clients.data.counts[0] == len(text) - 10
  assert decode(x[3]) == text[3:13] and clients.vocab[y[3]] == text[13]


def test_tiny_shakespeare_by_speaker(shared_data):
  with open(os.path.join(shared_data, 'tinyshakespeare', 'input.txt')) as f:
    text = f.read()
  clients = partitions.by_speaker(text, seq_len=80, max_clients=20, max_samples=200)
  assert len(clients.names) == 20 and len(set(clients.names)) == 20
  assert clients.data.arrays['x'].shape == (20, 200, 80)
  assert clients.data.counts.tolist() == [200] * 20  # the 20 most talkative speakers have far more than 200
  assert {'GLOUCESTER', 'MENENIUS'} & set(clients.names)
