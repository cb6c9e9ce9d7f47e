"""Graphs and gossip: mixing weights, spectral gaps against closed forms and eigvalsh, ppermute = dense, failures."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import decentral
from decentral import axis

N = 8
TOPOLOGIES = {
    'complete': decentral.complete(N),
    'ring': decentral.ring(N),
    'torus': decentral.torus(2, 4),
    'exponential': decentral.exponential(N),
    'erdos_renyi': decentral.erdos_renyi(N, 0.4, seed=1),
    'barabasi_albert': decentral.barabasi_albert(N, 2, seed=2),
    'star': decentral.star(N),
    'erdos_renyi_uniform': decentral.erdos_renyi(N, 0.4, seed=1, weights='uniform'),
}


@pytest.mark.parametrize('name', sorted(TOPOLOGIES))
def test_mixing_is_symmetric_doubly_stochastic_connected(name):
  w = TOPOLOGIES[name].mixing
  assert np.all(w >= -1e-15)
  np.testing.assert_allclose(w, w.T, atol=1e-15)
  np.testing.assert_allclose(w.sum(0), 1)
  np.testing.assert_allclose(w.sum(1), 1)
  eig = np.sort(np.abs(np.linalg.eigvalsh(w)))[::-1]
  assert decentral.spectral_gap(w) == pytest.approx(1 - eig[1], abs=1e-12)
  assert decentral.spectral_gap(w) > 1e-6  # connected


def test_spectral_gaps_against_closed_forms():
  # Circulant graphs: eigenvalues sum_s w_s cos(2 pi k s / n) (the DFT of the first row).
  for n in (5, 8, 13):
    for topo in (decentral.exponential(n), decentral.ring(n)):
      lam = np.array([sum(w * np.cos(2 * np.pi * k * s / n) for s, w in topo.shifts) for k in range(n)])
      assert decentral.spectral_gap(topo.mixing) == pytest.approx(1 - np.sort(np.abs(lam))[-2], abs=1e-12)
  # Torus r x c (r, c >= 3): (1 + 2 cos(2 pi a / r) + 2 cos(2 pi b / c)) / 5.
  r, c = 3, 5
  lam = np.array([(1 + 2 * np.cos(2 * np.pi * a / r) + 2 * np.cos(2 * np.pi * b / c)) / 5
                  for a in range(r) for b in range(c)])
  assert decentral.spectral_gap(decentral.torus(r, c).mixing) == pytest.approx(1 - np.sort(np.abs(lam))[-2])
  # Star with Metropolis-Hastings weights: W = I - L/n, Laplacian spectrum {0, 1 (x n-2), n}: gap 1/n.
  for n in (4, 9):
    assert decentral.spectral_gap(decentral.star(n).mixing) == pytest.approx(1 / n)


def test_weights_by_hand():
  path = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]])
  np.testing.assert_allclose(decentral.metropolis_hastings(path),
                             [[2 / 3, 1 / 3, 0], [1 / 3, 1 / 3, 1 / 3], [0, 1 / 3, 2 / 3]])
  np.testing.assert_allclose(decentral.uniform_weights(path),
                             [[2 / 3, 1 / 3, 0], [1 / 3, 1 / 3, 1 / 3], [0, 1 / 3, 2 / 3]])
  star4 = np.zeros((4, 4))
  star4[0, 1:] = star4[1:, 0] = 1
  np.testing.assert_allclose(decentral.metropolis_hastings(star4)[1], [1 / 4, 3 / 4, 0, 0])
  # Exponential graph on 8: offsets +-1, +-2, +-4 -> 5 distinct neighbours, weight 1/6 each.
  np.testing.assert_allclose(decentral.exponential(8).mixing[0], [1 / 6, 1 / 6, 1 / 6, 0, 1 / 6, 0, 1 / 6, 1 / 6])
  # Barabasi-Albert with m = 2: every node after the first two has degree >= 2, 2(n - 2) edges.
  adj = decentral.barabasi_albert(10, 2, seed=0).mixing > 0
  np.fill_diagonal(adj, False)
  assert adj.sum() // 2 == 2 * (10 - 2) and adj.sum(1)[2:].min() >= 2


def _gossip_all(x, alive):
  out = {name: decentral.gossip(x, topo, 'workers') for name, topo in TOPOLOGIES.items()}
  for name in ('ring', 'torus', 'erdos_renyi'):
    out[name + '_failed'] = decentral.gossip(x, TOPOLOGIES[name], 'workers', alive=alive)
  return out


ALIVE = np.array([True, True, False, True, True, True, False, True])


def _renormalised_oracle(w, alive):
  out = np.eye(len(w))
  for i in np.flatnonzero(alive):
    row = w[i] * alive
    out[i] = row / row.sum()
  return out


@pytest.mark.parametrize('backend', axis.BACKENDS)
def test_gossip_equals_the_dense_product_on_every_backend(backend):
  """ppermute (circulant, torus) and gather + row (the rest) both give W x; failures give the renormalised W."""
  x = {'w': jax.random.normal(jax.random.key(0), (N, 3, 2)), 'b': jax.random.normal(jax.random.key(1), (N,))}
  got = axis.run(_gossip_all, N, backend=backend, in_axes=(0, None))(x, jnp.asarray(ALIVE))
  for name, out in got.items():
    base = name.replace('_failed', '')
    w = TOPOLOGIES[base].mixing
    if name.endswith('_failed'):
      w = _renormalised_oracle(w, ALIVE)
    for leaf_x, leaf_out in zip(jax.tree.leaves(x), jax.tree.leaves(out)):
      want = np.einsum('ij,j...->i...', w, np.asarray(leaf_x, np.float64))
      np.testing.assert_allclose(leaf_out, want, rtol=1e-5, atol=1e-5, err_msg=name)


def test_topology_errors():
  with pytest.raises(ValueError, match='symmetric'):
    decentral.from_adjacency(np.triu(np.ones((3, 3)), 1))
  with pytest.raises(ValueError, match='weights'):
    decentral.from_adjacency(np.ones((3, 3)), weights='random')
  with pytest.raises(ValueError, match='connected'):
    decentral.erdos_renyi(30, 0.001)
  with pytest.raises(ValueError, match='m must'):
    decentral.barabasi_albert(5, 5)
  with pytest.raises(ValueError, match='alive'):
    axis.run(lambda v: decentral.gossip(v, decentral.ring(4), 'workers', alive=np.ones(3, bool)), 4)(jnp.zeros(4))
