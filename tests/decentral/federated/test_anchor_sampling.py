"""decentral.federated.anchor_sampling (FedAMD): an anchor round and a miner round by hand (the official code's
SARAH-type recursion, minibatches in a fixed order), the anchored variant, and the role law."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from decentral.federated import anchor_sampling, partitions, rounds, sampling


def _problem(sizes, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(sum(sizes), 2))
  y = x @ np.array([2.0, -1.0]) + rng.normal(size=sum(sizes))
  bounds = np.cumsum([0] + sizes)
  return x, y, partitions.pad({'x': x, 'y': y}, [np.arange(bounds[i], bounds[i + 1]) for i in range(len(sizes))])


def _squared(w, batch):
  return 0.5 * (batch['x'] @ w - batch['y']) ** 2


def _in_order(data, count, key, ctx):
  """Rows in their stored order every pass, so the minibatches are known."""
  del count, key, ctx
  return jnp.arange(jax.tree.leaves(data)[0].shape[0], dtype=jnp.int32)


def _grad(w, xb, yb):
  return xb.T @ (xb @ w - yb) / len(yb)


@pytest.mark.parametrize('recursion', ['sarah', 'anchored'])
def test_anchor_round_then_miner_round_by_hand(recursion, x64):
  sizes, lr, k = [3, 4], 0.1, 3
  x, y, data = _problem(sizes, seed=5)
  algorithm = anchor_sampling.fedamd(anchor_every=2, recursion=recursion)._replace(order=_in_order)
  fed = rounds.Federated(_squared, data, local=rounds.Local(optax.sgd(lr), steps=k, batch_size=2),
                         sampler=sampling.everyone(2), algorithm=algorithm)
  w0 = np.array([0.5, 0.5])
  bounds = np.cumsum([0] + sizes)
  rows = [(x[bounds[i]:bounds[i + 1]], y[bounds[i]:bounds[i + 1]]) for i in range(2)]
  state = fed.init(jnp.asarray(w0), jax.random.key(0))
  np.testing.assert_allclose(state.table, [_grad(w0, *r) for r in rows], rtol=1e-12)  # the initial full pass

  # Round 0 (t = 0 mod 2): every participant is an anchor, the model stays, the bullseyes are refreshed at x_0.
  state, metrics = fed.round(state)
  np.testing.assert_array_equal(state.params, w0)
  assert metrics.weight.tolist() == [0.0, 0.0] and metrics.sent.tolist() == [16, 16]

  # Round 1: every participant mines K steps of batch 2 in stored order, from g = mean of the bullseyes.
  table = state.table
  state, metrics = fed.round(state)
  g = np.mean([_grad(w0, *r) for r in rows], axis=0)
  deltas = []
  for xi, yi in rows:
    n = len(yi)
    batches = [np.arange(j, min(j + 2, n)) for j in range(0, n, 2)]
    w, previous, d = w0.copy(), w0.copy(), g
    for step in range(k):
      idx = batches[step % len(batches)]
      xb, yb = xi[idx], yi[idx]
      if recursion == 'sarah':
        d = _grad(w, xb, yb) - _grad(previous, xb, yb) + d
      else:
        d = _grad(w, xb, yb) - _grad(w0, xb, yb) + g
      previous, w = w, w - lr * d
    deltas.append(w0 - w)
  np.testing.assert_allclose(state.params, w0 - np.mean(deltas, axis=0), rtol=1e-12)
  np.testing.assert_array_equal(state.table, table)  # miners leave the bullseyes alone
  assert metrics.weight.tolist() == [1.0, 1.0]


def test_roles_follow_the_anchor_probability():
  """With p = 0.3 and all 40 clients every round, the share of anchors (weight 0) over 10 rounds is near 0.3."""
  _, _, data = _problem([3] * 40)
  fed = rounds.Federated(_squared, data, local=rounds.Local(optax.sgd(0.05), steps=1),
                         sampler=sampling.everyone(40), algorithm=anchor_sampling.fedamd(0.3))
  state, anchors = fed.init(jnp.zeros(2), jax.random.key(2)), 0
  for _ in range(10):
    state, metrics = fed.round(state)
    anchors += int(np.sum(np.asarray(metrics.weight) == 0))
  # Binomial(400, 0.3): mean 120, sd 9.2.
  assert abs(anchors - 120) < 4 * 9.2


def test_bad_arguments():
  with pytest.raises(ValueError, match='anchor_probability'):
    anchor_sampling.fedamd(1.5)
  with pytest.raises(ValueError, match='recursion'):
    anchor_sampling.fedamd(recursion='saga')
