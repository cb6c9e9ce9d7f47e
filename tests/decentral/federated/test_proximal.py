"""decentral.federated.proximal (FedProx): mu = 0 is FedAvg; a first round by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from decentral.federated import fedopt, partitions, proximal, rounds, sampling


def _problem(sizes, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(sum(sizes), 3))
  y = x @ np.array([1.0, -2.0, 0.5]) + rng.normal(size=sum(sizes))
  bounds = np.cumsum([0] + sizes)
  return x, y, partitions.pad({'x': x, 'y': y}, [np.arange(bounds[i], bounds[i + 1]) for i in range(len(sizes))])


def _squared(w, batch):
  return 0.5 * (batch['x'] @ w - batch['y']) ** 2


def test_mu_zero_is_fedavg():
  _, _, data = _problem([4, 7, 3, 5, 6])
  local = rounds.Local(optax.sgd(0.05, momentum=0.9), steps=4, batch_size=2)
  runs = []
  for algorithm in (fedopt.fedavg(), proximal.fedprox(0.0)):
    fed = rounds.Federated(_squared, data, local=local, sampler=sampling.uniform(5, 3), algorithm=algorithm)
    state = fed.init(jnp.zeros(3), jax.random.key(4))
    for _ in range(3):
      state, _ = fed.round(state)
    runs.append(np.asarray(state.params))
  np.testing.assert_array_equal(runs[0], runs[1])


def test_first_round_by_hand(x64):
  """Three full-batch local steps on F_i(y) + mu/2 |y - x_0|^2, weights n_i, server SGD lr 1."""
  sizes, mu, lr = [3, 5], 0.5, 0.2
  x, y, data = _problem(sizes, seed=2)
  fed = rounds.Federated(_squared, data, local=rounds.Local(optax.sgd(lr), steps=3), sampler=sampling.everyone(2),
                         algorithm=proximal.fedprox(mu))
  w0 = np.array([0.3, 0.1, -0.2])
  state, _ = fed.round(fed.init(jnp.asarray(w0), jax.random.key(0)))
  finals, start = [], 0
  for n in sizes:
    xi, yi = x[start:start + n], y[start:start + n]
    start += n
    w = w0.copy()
    for _ in range(3):
      w = w - lr * (xi.T @ (xi @ w - yi) / n + mu * (w - w0))
    finals.append(w)
  np.testing.assert_allclose(state.params, (3 * finals[0] + 5 * finals[1]) / 8, rtol=1e-12)
