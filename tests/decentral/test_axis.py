"""The worker axis: vmap, shard_map and pmap agree; gossip equals the dense mixing product; the grad trap."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax import lax

import decentral
from decentral import axis

N = 8


def _workers_tree(key):
  k1, k2 = jax.random.split(key)
  return {'w': jax.random.normal(k1, (N, 3, 2)), 'b': jax.random.normal(k2, (N, 5))}


def test_eight_devices_available():
  assert jax.device_count() >= N


@pytest.mark.parametrize('backend', ['shard_map', 'pmap'])
def test_backends_agree_with_vmap_on_collectives(backend):
  def step(x):
    i = axis.worker_index('workers')
    centred = jax.tree.map(lambda v: v - lax.pmean(v, 'workers'), x)
    return jax.tree.map(lambda v: v * (i + 1), centred)

  x = _workers_tree(jax.random.key(0))
  want = axis.run(step, N)(x)
  got = axis.run(step, N, backend=backend)(x)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6), want, got)


@pytest.mark.parametrize('backend', axis.BACKENDS)
def test_aggregate_mean_chains_with_optax(backend):
  tx = optax.chain(decentral.aggregate(decentral.mean, axis_name='workers'), optax.sgd(0.5))

  def step(g):
    u, _ = tx.update(g, tx.init(g))
    return u

  g = _workers_tree(jax.random.key(1))
  out = axis.run(step, N, backend=backend)(g)
  for name in g:
    want = -0.5 * np.mean(np.asarray(g[name]), axis=0)
    for i in range(N):
      np.testing.assert_allclose(out[name][i], want, rtol=1e-6, atol=1e-6)


def test_aggregate_rejects_too_many_faulty_workers():
  tx = decentral.aggregate(decentral.mean, axis_name='workers', f=4)
  with pytest.raises(ValueError, match='f=4'):
    axis.run(lambda g: tx.update(g, tx.init(g))[0], N)(jnp.zeros((N, 2)))


@pytest.mark.parametrize('make', [decentral.ring, decentral.complete])
@pytest.mark.parametrize('backend', axis.BACKENDS)
def test_gossip_equals_dense_mixing(make, backend):
  topo = make(N)
  x = _workers_tree(jax.random.key(2))
  out = axis.run(lambda v: decentral.gossip(v, topo, 'workers'), N, backend=backend)(x)
  for name in x:
    want = np.einsum('ij,j...->i...', topo.mixing, np.asarray(x[name], np.float64))
    np.testing.assert_allclose(out[name], want, rtol=1e-5, atol=1e-5)


def test_gossip_dense_path_matches_circulant_path():
  topo = decentral.ring(N)
  dense = decentral.Topology(topo.mixing)  # no shifts: all_gather + the worker's row
  x = _workers_tree(jax.random.key(3))
  a = axis.run(lambda v: decentral.gossip(v, topo, 'workers'), N)(x)
  b = axis.run(lambda v: decentral.gossip(v, dense, 'workers'), N, backend='shard_map')(x)
  jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6), a, b)


@pytest.mark.parametrize('n', [2, 3, 5, 8])
def test_mixing_matrices_doubly_stochastic_and_gap(n):
  for topo in (decentral.ring(n), decentral.complete(n)):
    w = topo.mixing
    np.testing.assert_allclose(w.sum(0), 1.0)
    np.testing.assert_allclose(w.sum(1), 1.0)
    np.testing.assert_allclose(w, w.T)
    eig = np.sort(np.abs(np.linalg.eigvalsh(w)))
    assert decentral.spectral_gap(w) == pytest.approx(1 - eig[-2])
  assert decentral.spectral_gap(decentral.complete(n).mixing) == pytest.approx(1.0)
  # Ring: eigenvalues (1 + 2 cos(2 pi k / n)) / 3.
  if n >= 3:
    lam = (1 + 2 * np.cos(2 * np.pi * np.arange(n) / n)) / 3
    want = 1 - np.sort(np.abs(lam))[-2]
    assert decentral.spectral_gap(decentral.ring(n).mixing) == pytest.approx(want)


def _loss(w, x):
  return jnp.sum(w * x)


def test_shard_map_replicated_gradient_is_summed_over_workers():
  """The trap of DESIGN.md: a replicated parameter's gradient comes back summed; varying() avoids it."""
  w, x = jnp.ones(3), jax.random.normal(jax.random.key(4), (N, 3))
  per_worker = axis.run(lambda w, x: jax.grad(_loss)(w, x), N, in_axes=(None, 0))(w, x)
  np.testing.assert_allclose(per_worker, x, rtol=1e-6)  # vmap: each worker's own gradient

  trapped = axis.run(lambda w, x: jax.grad(_loss)(w, x), N, backend='shard_map', in_axes=(None, 0))(w, x)
  np.testing.assert_allclose(trapped, np.broadcast_to(x.sum(0), x.shape), rtol=1e-5)  # summed, not own

  fixed = axis.run(lambda w, x: jax.grad(_loss)(axis.varying(w, 'workers'), x), N, backend='shard_map',
                   in_axes=(None, 0))(w, x)
  np.testing.assert_allclose(fixed, per_worker, rtol=1e-6)
  twice = axis.run(lambda w, x: jax.grad(_loss)(axis.varying(axis.varying(w, 'workers'), 'workers'), x), N,
                   backend='shard_map', in_axes=(None, 0))(w, x)  # idempotent
  np.testing.assert_allclose(twice, per_worker, rtol=1e-6)


def test_run_rejects_bad_input():
  with pytest.raises(ValueError, match='backend'):
    axis.run(lambda x: x, 2, backend='threads')
  with pytest.raises(ValueError, match='devices'):
    axis.run(lambda x: x, 64, backend='pmap')
  with pytest.raises(ValueError, match='in_axes'):
    axis.run(lambda x: x, N, in_axes=1, backend='shard_map')
  with pytest.raises(ValueError, match='stacked'):
    axis.run(lambda x: x, N, backend='shard_map')(jnp.zeros((3, 2)))
  with pytest.raises(ValueError, match='topology has n=4'):
    axis.run(lambda v: decentral.gossip(v, decentral.ring(4), 'workers'), N)(jnp.zeros((N, 2)))
