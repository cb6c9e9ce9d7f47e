"""DIMAT merging: permutations are exact symmetries, alignment undoes them, and a first merge by hand (brute force
over permutations instead of the Hungarian solver), float64; the worker-axis merge equals the host merge."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decentral import axis
from decentral.p2p import dimat, topology


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


# ---------------------------------------------------------------------------------------------- on the worker axis

PATH4 = np.array([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]], bool)


def _merge_on_axis(models, batches, topo, activation, solver='hungarian'):
  """One dimat_gossip merge of zero updates for every worker (vmap), as lists of layers."""
  n = len(models)
  tx = dimat.dimat_gossip(topo, axis_name='w', spec=dimat.mlp_spec(len(models[0])),
                          activations=dimat.mlp_activations(activation), solver=solver)

  def step(p, x):
    u, _ = tx.update(jax.tree.map(jnp.zeros_like, p), tx.init(p), p, batch=x)
    return jax.tree.map(jnp.add, p, u)

  stacked = jax.tree.map(lambda *l: jnp.stack(l), *[jax.tree.map(jnp.asarray, m) for m in models])
  out = axis.run(step, n, axis_name='w')(stacked, jnp.asarray(np.stack(batches)))
  return [jax.tree.map(lambda x: np.asarray(x[i]), out) for i in range(n)]


@pytest.mark.parametrize('graph, solver', [('path', 'hungarian'), ('ring', 'hungarian'), ('ring', 'scipy')])
def test_worker_axis_merge_equals_the_host_merge(graph, solver, x64):
  """The jitted per-worker merge (gather on a general graph, ppermute on the ring) gives the host merge's models."""
  rng = np.random.default_rng(6)
  models = [_mlp(rng, [3, 5, 4, 2]) for _ in range(4)]
  batches = [rng.normal(size=(25, 3)) for _ in range(4)]
  topo = topology.from_adjacency(PATH4) if graph == 'path' else topology.ring(4)
  got = _merge_on_axis(models, batches, topo, jnp.tanh, solver)
  want = dimat.dimat_merge(models, topo.mixing, batches, activation=np.tanh)
  naive = dimat.dimat_merge(models, topo.mixing, batches, align=False)
  for g, w, v in zip(got, want, naive):
    for gl, wl in zip(g, w):
      np.testing.assert_allclose(gl['kernel'], wl['kernel'], rtol=1e-12, atol=1e-14)
      np.testing.assert_allclose(gl['bias'], wl['bias'], rtol=1e-12, atol=1e-14)
  assert any(not np.allclose(g[0]['kernel'], v[0]['kernel']) for g, v in zip(got, naive))  # alignment did act


def test_worker_axis_merge_of_twins_keeps_the_function_exactly(x64):
  rng = np.random.default_rng(7)
  model = _mlp(rng, [4, 6, 5, 2])
  perms = [rng.permutation(6), rng.permutation(5)]
  twin = dimat.permute_mlp(model, perms)
  as_tree = dimat.permute_tree(jax.tree.map(jnp.asarray, model), dimat.mlp_spec(3),
                               {'hidden_0': jnp.asarray(perms[0]), 'hidden_1': jnp.asarray(perms[1])})
  for a, b in zip(as_tree, twin):
    np.testing.assert_array_equal(a['kernel'], b['kernel'])
  x = rng.normal(size=(100, 4))
  merged = _merge_on_axis([model, twin], [x, x], topology.complete(2), jax.nn.relu)
  np.testing.assert_allclose(dimat.mlp_apply(merged[0], x), dimat.mlp_apply(model, x), rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(dimat.mlp_apply(merged[1], x), dimat.mlp_apply(model, x), rtol=1e-12, atol=1e-12)


def test_dsgd_steps_locally_between_merges(x64):
  """merge_every=2: step 1 is x - lr g on every worker; step 2 merges the half-step models (here identical models:
  the merge is the identity, so both steps are local)."""
  rng = np.random.default_rng(8)
  model = jax.tree.map(jnp.asarray, _mlp(rng, [2, 3, 1]))
  stacked = jax.tree.map(lambda x: jnp.stack([x, x + 0.5]), model)
  tx = dimat.dimat_dsgd(0.1, topology.complete(2), axis_name='w', spec=dimat.mlp_spec(2),
                        activations=dimat.mlp_activations(), merge_every=2)
  grads = jax.tree.map(lambda x: jnp.stack([jnp.ones_like(x), -jnp.ones_like(x)]), model)
  x = jnp.asarray(rng.normal(size=(10, 2)))

  def step(p, g, state):
    u, state = tx.update(g, state, p, batch=x)
    return jax.tree.map(jnp.add, p, u), state

  run = axis.run(step, 2, axis_name='w')
  one, state = run(stacked, grads, axis.run(tx.init, 2, axis_name='w')(stacked))
  np.testing.assert_allclose(one[0]['kernel'], stacked[0]['kernel'] - 0.1 * grads[0]['kernel'], rtol=1e-14)
  two, _ = run(one, grads, state)
  assert np.allclose(two[0]['kernel'][0], two[0]['kernel'][1])  # the merge: both workers hold the mean
  assert not np.allclose(two[0]['kernel'][0], one[0]['kernel'][0] - 0.1 * grads[0]['kernel'][0])


def test_worker_axis_bad_arguments_name_the_transform():
  model = jax.tree.map(jnp.asarray, _mlp(np.random.default_rng(9), [2, 3, 1]))
  tx = dimat.dimat_gossip(None, axis_name='w', spec=dimat.mlp_spec(3), activations=dimat.mlp_activations())
  run = axis.run(lambda p: tx.update(p, tx.init(p), p, batch=jnp.ones((4, 2)))[0], 2, axis_name='w')
  stacked = jax.tree.map(lambda x: jnp.stack([x, x]), model)
  with pytest.raises(ValueError, match='dimat_gossip: spec'):
    jax.eval_shape(run, stacked)
  with pytest.raises(ValueError, match='dimat_dsgd: dimat_gossip: solver'):
    dimat.dimat_dsgd(0.1, None, axis_name='w', spec=dimat.mlp_spec(2), activations=dimat.mlp_activations(),
                     solver='auction')
