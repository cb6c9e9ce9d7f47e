"""SybilWall's probabilistic gossip: two rounds by hand (numpy, float64), p = 0 keeps each node to its
neighbourhood, and gossip exposes a Sybil region that a single attack edge hides from neighbourhood-only FoolsGold;
the worker-axis version equals the network simulator round by round."""

import jax
import jax.numpy as jnp
import numpy as np

from decentral import axis
from decentral.p2p import sybil_gossip as sg
from decentral.p2p import topology
from decentral.robust.similarity import foolsgold_weights

PATH = np.array([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]], bool)


def test_two_rounds_by_hand(x64):
  rng = np.random.default_rng(0)
  u1, u2 = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
  s = sg.sybil_gossip_step(sg.sybil_gossip_init(4, 3, dtype=jnp.float64), jnp.asarray(u1), PATH, forward_prob=1.0)
  direct = PATH | np.eye(4, dtype=bool)
  np.testing.assert_array_equal(s.known, direct)
  np.testing.assert_allclose(s.history, np.where(direct[:, :, None], u1[None], 0.0))
  s = sg.sybil_gossip_step(s, jnp.asarray(u2), PATH, forward_prob=1.0)
  # Round 2 with p = 1: i gets u2 from its neighbours and, two hops away, the round-1 copy a neighbour holds.
  hist = np.where(direct[:, :, None], u1[None], 0.0) + np.where(direct[:, :, None], u2[None], 0.0)
  two_hops = (PATH.astype(int) @ PATH.astype(int) > 0) & ~direct
  hist += np.where(two_hops[:, :, None], u1[None], 0.0)
  np.testing.assert_allclose(s.history, hist, rtol=1e-14)
  np.testing.assert_array_equal(s.known, direct | two_hops)
  w = np.asarray(sg.sybil_weights(s, PATH))
  for i in range(4):
    alpha = np.asarray(foolsgold_weights(jnp.asarray(hist[i]), jnp.asarray(s.known[i])))
    row = np.where(PATH[i], alpha, 0.0) + np.eye(4)[i]
    np.testing.assert_allclose(w[i], row / row.sum(), rtol=1e-12)


def test_no_forwarding_keeps_the_neighbourhood():
  s = sg.sybil_gossip_init(4, 2)
  for _ in range(5):
    s = sg.sybil_gossip_step(s, jnp.ones((4, 2)), PATH, forward_prob=0.0)
  np.testing.assert_array_equal(s.known, PATH | np.eye(4, dtype=bool))


def _sybil_weight_seen_by_victim(forward_prob, rounds=6):
  """8 honest nodes on a ring sending diverse updates; 4 Sybils (a clique) sending one direction plus small noise,
  joined to honest node 0 by one attack edge. Returns node 0's mixing weight on its Sybil neighbour."""
  n_h, n_s = 8, 4
  n = n_h + n_s
  adj = np.zeros((n, n), bool)
  for i in range(n_h):
    adj[i, (i + 1) % n_h] = adj[(i + 1) % n_h, i] = True
  adj[n_h:, n_h:] = True
  adj[0, n_h] = adj[n_h, 0] = True
  rng = np.random.default_rng(1)
  target = rng.normal(size=16)
  s = sg.sybil_gossip_init(n, 16, seed=2)
  for _ in range(rounds):
    u = rng.normal(size=(n, 16))
    u[n_h:] = target + 0.05 * rng.normal(size=(n_s, 16))
    s = sg.sybil_gossip_step(s, jnp.asarray(u, jnp.float32), adj, forward_prob=forward_prob)
  return float(sg.sybil_weights(s, adj)[0, n_h])


def test_gossip_exposes_a_sybil_region_behind_one_attack_edge():
  assert _sybil_weight_seen_by_victim(0.0) > 0.2  # alone among node 0's neighbours, the Sybil looks honest
  assert _sybil_weight_seen_by_victim(0.5) == 0.0  # its fellow Sybils' updates reach node 0 by gossip


def test_worker_axis_equals_the_network_simulator(x64):
  """Four rounds of sybilwall_gossip (each worker its own row, gathered tables) against sybil_gossip_step and
  sybilwall_mix on the whole network: the same coins, histories, knowledge and mixed models, on a graph that is
  not circulant; the parameters a tree of two leaves, the simulator's vectors their concatenation."""
  adj = np.zeros((6, 6), bool)
  for i, j in [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (1, 4)]:
    adj[i, j] = adj[j, i] = True
  topo = topology.from_adjacency(adj)
  rng = np.random.default_rng(3)
  params = {'a': jnp.asarray(rng.normal(size=(6, 2))), 'b': jnp.asarray(rng.normal(size=(6, 3)))}
  tx = sg.sybilwall_gossip(topo, axis_name='w', forward_prob=0.5, seed=4)

  def step(p, u, state):
    out, state = tx.update(u, state, p)
    return jax.tree.map(jnp.add, p, out), state

  run = axis.run(step, 6, axis_name='w')
  state = axis.run(tx.init, 6, axis_name='w')(params)
  host = sg.sybil_gossip_init(6, 5, seed=4, dtype=jnp.float64)
  models = np.concatenate([params['a'], params['b']], axis=1)
  for _ in range(4):
    u = rng.normal(size=(6, 5))
    u[4:] = u[5] + 0.01 * rng.normal(size=(2, 5))  # two alike nodes
    params, state = run(params, {'a': jnp.asarray(u[:, :2]), 'b': jnp.asarray(u[:, 2:])}, state)
    host = sg.sybil_gossip_step(host, jnp.asarray(u), adj, forward_prob=0.5)
    models = np.asarray(sg.sybilwall_mix(host, jnp.asarray(models + u), adj))
    np.testing.assert_array_equal(state.known, host.known)
    np.testing.assert_allclose(np.concatenate([state.history['a'], state.history['b']], axis=2), host.history,
                               rtol=1e-14)
    np.testing.assert_allclose(np.concatenate([params['a'], params['b']], axis=1), models, rtol=1e-12)
  assert not host.known.all() and (host.known.sum() > (adj | np.eye(6, dtype=bool)).sum())  # forwarding happened


def test_worker_axis_without_forwarding_is_neighbourhood_foolsgold():
  tx = sg.sybilwall_gossip(topology.ring(4), axis_name='w', forward_prob=0.0)
  p = jnp.arange(8.0).reshape(4, 2)

  def step(p, g):
    state = tx.init(p)
    for _ in range(3):
      u, state = tx.update(g, state, p)
      p = p + u
    return state.known

  known = axis.run(step, 4, axis_name='w')(p, jnp.ones((4, 2)))
  np.testing.assert_array_equal(known, topology.ring(4).mixing > 0)
