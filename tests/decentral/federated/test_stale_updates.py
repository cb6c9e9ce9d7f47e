"""decentral.federated.stale_updates (FedStale, FedVARP): beta = 0 is FedAvg over the participants; two rounds by
hand with stored updates, Bernoulli participation and unequal clients."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from decentral.federated import fedopt, partitions, rounds, sampling, stale_updates


def _problem(sizes, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(sum(sizes), 2))
  y = x @ np.array([1.0, -1.0]) + rng.normal(size=sum(sizes))
  bounds = np.cumsum([0] + sizes)
  return x, y, partitions.pad({'x': x, 'y': y}, [np.arange(bounds[i], bounds[i + 1]) for i in range(len(sizes))])


def _squared(w, batch):
  return 0.5 * (batch['x'] @ w - batch['y']) ** 2


def test_beta_zero_is_fedavg_over_the_participants():
  _, _, data = _problem([6] * 6)
  local = rounds.Local(optax.sgd(0.1), steps=3, batch_size=2)
  runs = []
  for algorithm in (fedopt.fedavg(), stale_updates.fedstale(0.0)):
    fed = rounds.Federated(_squared, data, local=local, sampler=sampling.uniform(6, 2), algorithm=algorithm)
    state = fed.init(jnp.zeros(2), jax.random.key(1))
    for _ in range(3):
      state, _ = fed.round(state)
    runs.append(np.asarray(state.params))
  np.testing.assert_allclose(runs[1], runs[0], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize('beta', [0.5, 1.0])
def test_two_rounds_by_hand(beta, x64):
  """Round 1: clients 0, 2 (of 3) participate; round 2: clients 1, 2; full-batch local GD; the server SGD lr 1."""
  sizes, lr, probs = [2, 3, 4], 0.3, np.array([0.5, 0.5, 1.0])
  x, y, data = _problem(sizes, seed=3)
  fed = rounds.Federated(_squared, data, local=rounds.Local(optax.sgd(lr), steps=2),
                         sampler=sampling.bernoulli(probs), algorithm=stale_updates.fedstale(beta))
  # Participation is drawn from the run key; pick the rounds' participants by hand through a custom select.
  pattern = jnp.array([[True, False, True], [False, True, True]])

  def select(state, sampler, key):
    sel = sampler.sample(key)
    return sel._replace(active=pattern[state.round])

  fed = rounds.Federated(_squared, data, local=fed.local, sampler=fed.sampler,
                         algorithm=fed.algorithm._replace(select=select))
  state = fed.init(jnp.zeros(2), jax.random.key(0))
  p = np.array(sizes) / sum(sizes)
  table, w = np.zeros((3, 2)), np.zeros(2)
  bounds = np.cumsum([0] + sizes)
  for t in range(2):
    state, metrics = fed.round(state)
    active = np.asarray(pattern[t])
    deltas = np.zeros((3, 2))
    for i in np.flatnonzero(active):
      xi, yi = x[bounds[i]:bounds[i + 1]], y[bounds[i]:bounds[i + 1]]
      v = w.copy()
      for _ in range(2):
        v = v - lr * xi.T @ (xi @ v - yi) / sizes[i]
      deltas[i] = w - v
    q = np.where(active, p / probs, 0.0)
    direction = (q[:, None] * (deltas - beta * table)).sum(0) + beta * (p[:, None] * table).sum(0)
    w = w - direction
    table[active] = deltas[active]
    np.testing.assert_allclose(state.params, w, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(state.table, table, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(metrics.weight, q, rtol=1e-6)


def test_bad_arguments():
  with pytest.raises(ValueError, match='beta'):
    stale_updates.fedstale(1.5)
  with pytest.raises(ValueError, match='weights'):
    stale_updates.fedstale(0.5, weights='other')
