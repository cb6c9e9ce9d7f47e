"""SybilWall's probabilistic gossip: two rounds by hand (numpy, float64), p = 0 keeps each node to its
neighbourhood, and gossip exposes a Sybil region that a single attack edge hides from neighbourhood-only FoolsGold."""

import jax.numpy as jnp
import numpy as np

from decentral.p2p import sybil_gossip as sg
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
