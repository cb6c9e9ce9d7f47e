"""DIMAT merging: permutations are exact symmetries, alignment undoes them, and a first merge by hand (brute force
over permutations instead of the Hungarian solver), float64."""

import itertools

import numpy as np
import pytest

from decentral.p2p import dimat


def _mlp(rng, sizes):
  return [{'kernel': rng.normal(size=(a, b)), 'bias': rng.normal(size=b)} for a, b in zip(sizes[:-1], sizes[1:])]


@pytest.mark.parametrize('activation', [dimat.relu, np.tanh])
def test_permutation_preserves_the_function_exactly(activation):
  rng = np.random.default_rng(1)
  model = _mlp(rng, [6, 9, 7, 3])
  perms = [rng.permutation(9), rng.permutation(7)]
  x = rng.normal(size=(40, 6))
  shuffled = dimat.permute_mlp(model, perms)
  np.testing.assert_allclose(dimat.mlp_apply(shuffled, x, activation), dimat.mlp_apply(model, x, activation),
                             rtol=1e-13, atol=1e-13)
  assert not np.allclose(shuffled[0]['kernel'], model[0]['kernel'])


def test_alignment_undoes_a_permutation_and_the_merge_of_twins_is_lossless():
  rng = np.random.default_rng(2)
  model = _mlp(rng, [5, 8, 6, 3])
  twin = dimat.permute_mlp(model, [rng.permutation(8), rng.permutation(6)])
  x = rng.normal(size=(200, 5))
  aligned = dimat.align_mlp(model, twin, x)
  for a, m in zip(aligned, model):
    np.testing.assert_array_equal(a['kernel'], m['kernel'])
    np.testing.assert_array_equal(a['bias'], m['bias'])
  mixing = np.full((2, 2), 0.5)
  merged = dimat.dimat_merge([model, twin], mixing, [x, x])
  naive = dimat.dimat_merge([model, twin], mixing, [x, x], align=False)
  np.testing.assert_allclose(dimat.mlp_apply(merged[0], x), dimat.mlp_apply(model, x), rtol=1e-12, atol=1e-12)
  assert np.abs(dimat.mlp_apply(naive[0], x) - dimat.mlp_apply(model, x)).max() > 0.1


def test_first_merge_by_hand():
  """Three agents on a path 0 - 1 - 2 with Metropolis weights, MLPs 2 -> 3 -> 2, tanh; agent i matches on its own
  batch by brute force over the 3! permutations of the correlation objective."""
  rng = np.random.default_rng(3)
  models = [_mlp(rng, [2, 3, 2]) for _ in range(3)]
  batches = [rng.normal(size=(30, 2)) for _ in range(3)]
  w = np.array([[2 / 3, 1 / 3, 0], [1 / 3, 1 / 3, 1 / 3], [0, 1 / 3, 2 / 3]])

  def corr(a, b):
    a, b = a - a.mean(0), b - b.mean(0)
    return (a.T @ b) / np.outer(np.linalg.norm(a, axis=0), np.linalg.norm(b, axis=0))

  expected = []
  for i in range(3):
    total = {'k0': 0.0, 'b0': 0.0, 'k1': 0.0, 'b1': 0.0}
    for j in range(3):
      if w[i, j] == 0:
        continue
      m = models[j]
      if j != i:
        z_i = np.tanh(batches[i] @ models[i][0]['kernel'] + models[i][0]['bias'])
        z_j = np.tanh(batches[i] @ m[0]['kernel'] + m[0]['bias'])
        c = corr(z_i, z_j)
        perm = max(itertools.permutations(range(3)), key=lambda p: sum(c[u, p[u]] for u in range(3)))
        perm = list(perm)
        m = [{'kernel': m[0]['kernel'][:, perm], 'bias': m[0]['bias'][perm]},
             {'kernel': m[1]['kernel'][perm, :], 'bias': m[1]['bias']}]
      total['k0'] = total['k0'] + w[i, j] * m[0]['kernel']
      total['b0'] = total['b0'] + w[i, j] * m[0]['bias']
      total['k1'] = total['k1'] + w[i, j] * m[1]['kernel']
      total['b1'] = total['b1'] + w[i, j] * m[1]['bias']
    expected.append(total)
  merged = dimat.dimat_merge(models, w, batches, activation=np.tanh)
  for got, want in zip(merged, expected):
    np.testing.assert_allclose(got[0]['kernel'], want['k0'], rtol=1e-14)
    np.testing.assert_allclose(got[0]['bias'], want['b0'], rtol=1e-14)
    np.testing.assert_allclose(got[1]['kernel'], want['k1'], rtol=1e-14)
    np.testing.assert_allclose(got[1]['bias'], want['b1'], rtol=1e-14)


def test_without_alignment_it_is_plain_gossip():
  rng = np.random.default_rng(4)
  models = [_mlp(rng, [3, 4, 2]) for _ in range(4)]
  w = np.array([[.5, .25, 0, .25], [.25, .5, .25, 0], [0, .25, .5, .25], [.25, 0, .25, .5]])
  merged = dimat.dimat_merge(models, w, [np.zeros((2, 3))] * 4, align=False)
  for i in range(4):
    want = sum(w[i, j] * models[j][1]['kernel'] for j in range(4))
    np.testing.assert_allclose(merged[i][1]['kernel'], want, rtol=1e-14)


def test_bad_arguments_name_the_function():
  rng = np.random.default_rng(5)
  model = _mlp(rng, [3, 4, 2])
  with pytest.raises(ValueError, match='permute_mlp'):
    dimat.permute_mlp(model, [np.array([0, 0, 1, 2])])
  with pytest.raises(ValueError, match='dimat_merge: mixing'):
    dimat.dimat_merge([model, model], np.eye(3), [np.zeros((2, 3))] * 2)
  with pytest.raises(ValueError, match='match_units: similarity'):
    dimat.match_units(np.ones((3, 2)), np.ones((3, 2)), 'cosine')
