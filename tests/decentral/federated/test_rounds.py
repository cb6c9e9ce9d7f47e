"""decentral.federated.rounds, the round engine: FedAvg against centralised SGD, a first round by hand, the local
loop's passes and masks, empty clients, the server optimizers, the bytes."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from decentral import ledger, registry
from decentral.federated import fedopt, partitions, rounds, sampling


def _linear_problem(sizes, seed=0, dim=3):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(sum(sizes), dim))
  y = x @ rng.normal(size=dim) + 0.1 * rng.normal(size=sum(sizes))
  bounds = np.cumsum([0] + list(sizes))
  parts = [np.arange(bounds[i], bounds[i + 1]) for i in range(len(sizes))]
  return x, y, partitions.pad({'x': x, 'y': y}, parts)


def _squared(w, batch):
  return 0.5 * (batch['x'] @ w - batch['y']) ** 2


def test_fedavg_one_step_all_clients_equal_data_is_centralised_sgd(x64):
  """FedAvg, 1 full-batch local SGD step, every client, equal sizes, server lr 1 = gradient descent on the union."""
  x, y, data = _linear_problem([6, 6, 6, 6])
  fed = rounds.Federated(_squared, data, local=rounds.Local(optax.sgd(0.3), steps=1),
                         sampler=sampling.everyone(4), algorithm=fedopt.fedavg())
  state = fed.init(jnp.zeros(3), jax.random.key(0))
  w = np.zeros(3)
  for _ in range(3):
    state, _ = fed.round(state)
    w = w - 0.3 * x.T @ (x @ w - y) / len(y)
    np.testing.assert_allclose(state.params, w, rtol=1e-12, atol=1e-14)


def test_first_round_by_hand_unequal_clients_momentum_and_fedadam(x64):
  """Two full-batch local steps of heavy-ball SGD per client, weights n_i, then one FedAdam step, in numpy."""
  sizes = [2, 5, 0, 3]
  x, y, data = _linear_problem(sizes, seed=1)
  lr, beta, server_lr, tau = 0.1, 0.9, 0.05, 1e-3
  fed = rounds.Federated(_squared, data, local=rounds.Local(optax.sgd(lr, momentum=beta), steps=2),
                         sampler=sampling.everyone(4), algorithm=fedopt.fedadam(server_lr, tau=tau))
  w0 = np.array([0.5, -1.0, 2.0])
  state, metrics = fed.round(fed.init(jnp.asarray(w0), jax.random.key(0)))
  deltas, start = [], 0
  for n in sizes:
    xi, yi = x[start:start + n], y[start:start + n]
    start += n
    w, m = w0.copy(), np.zeros(3)
    for _ in range(2 if n else 0):
      m = beta * m + xi.T @ (xi @ w - yi) / n
      w = w - lr * m
    deltas.append(w0 - w)
  g = sum(n * d for n, d in zip(sizes, deltas)) / sum(sizes)
  # Adam, first step, bias-corrected: m_hat = g, v_hat = g^2.
  want = w0 - server_lr * g / (np.abs(g) + tau)
  np.testing.assert_allclose(state.params, want, rtol=1e-10)
  np.testing.assert_array_equal(metrics.weight, sizes)
  assert metrics.sent.tolist() == [24] * 4 and metrics.received.tolist() == [24] * 4  # 3 float64 each way


def _row_counter_problem(sizes):
  """Row j of client i carries the one-hot of position i * width + j; loss = <w, one-hot>: the masked-mean gradient
  of a batch is the mean of its rows' one-hots, so after SGD with lr 1, -y_K counts each real row's visits (each
  weighted 1 / |its batch|) in client i's own block of w."""
  width = max(sizes)
  offsets = np.cumsum([0] + sizes)
  ids = np.eye(len(sizes) * width)[np.concatenate([i * width + np.arange(n) for i, n in enumerate(sizes)]).astype(int)]
  parts = [np.arange(offsets[i], offsets[i + 1]) for i in range(len(sizes))]
  return partitions.pad({'id': ids}, parts), (lambda w, batch: batch['id'] @ w)


def _visits(sizes, state):
  """Client i's -y_K block, from the aggregate sum_i n_i (x_0 - y_K^i) / sum n_i (x_0 = 0, disjoint blocks)."""
  width = max(sizes)
  blocks = -np.asarray(state.params).reshape(len(sizes), width) * sum(sizes)
  return [blocks[i] / n if n else blocks[i] for i, n in enumerate(sizes)]


def test_epochs_visit_every_real_row_once_per_epoch_with_partial_last_batch():
  """E epochs of batch b: ceil(n_i / b) steps per epoch, every real row once per epoch, padding never."""
  sizes = [5, 2, 0, 4]
  data, loss = _row_counter_problem(sizes)
  fed = rounds.Federated(loss, data, local=rounds.Local(optax.sgd(1.0), epochs=2, batch_size=2),
                         sampler=sampling.everyone(4))
  state, metrics = fed.round(fed.init(jnp.zeros(4 * 5), jax.random.key(1)))
  assert metrics.weight.tolist() == sizes
  for n, visited in zip(sizes, _visits(sizes, state)):
    assert np.all(visited[n:] == 0)  # padding rows never reach a gradient; an empty client takes no step
    # per epoch every row once, weight 1/2 in a full batch, 1 alone in the last batch of an odd client
    assert visited[:n].sum() == pytest.approx(2 * -(-n // 2))
    assert np.all(visited[:n] >= 2 * 0.5 - 1e-6)


def test_k_steps_walk_reshuffled_passes():
  """K = 3 steps of batch 2 on a client of 4 rows: a whole pass (2 batches), then one batch of a new pass."""
  data, loss = _row_counter_problem([4])
  fed = rounds.Federated(loss, data, local=rounds.Local(optax.sgd(1.0), steps=3, batch_size=2),
                         sampler=sampling.everyone(1))
  state, _ = fed.round(fed.init(jnp.zeros(4), jax.random.key(5)))
  visited = -np.asarray(state.params)
  assert visited.sum() == pytest.approx(3.0)
  assert sorted(visited.tolist()) == pytest.approx([0.5, 0.5, 1.0, 1.0])


def test_only_empty_clients_give_a_zero_step_not_nan():
  _, _, data = _linear_problem([0, 4])
  fed = rounds.Federated(_squared, data, local=rounds.Local(optax.sgd(0.1), steps=2, batch_size=2),
                         sampler=sampling.with_probabilities([1.0, 0.0], 2), algorithm=fedopt.fedavg())
  state, metrics = fed.round(fed.init(jnp.ones(3), jax.random.key(0)))
  np.testing.assert_array_equal(state.params, np.ones(3))
  assert metrics.weight.tolist() == [0.0, 0.0] and np.isfinite(metrics.loss).all()


def test_bernoulli_inactive_clients_neither_train_nor_pay_and_ledger_counts_bytes():
  _, _, data = _linear_problem([3, 3, 3, 3])
  fed = rounds.Federated(_squared, data, local=rounds.Local(optax.sgd(0.1), steps=1),
                         sampler=sampling.bernoulli([1.0, 0.0, 1.0, 0.0]))
  led = ledger.Ledger(4)
  state = fed.run(fed.init(jnp.zeros(3, jnp.float32), jax.random.key(0)), 2, led=led)
  assert int(state.round) == 2
  assert led.per_worker.tolist() == [24, 0, 24, 0] and led.received.tolist() == [24, 0, 24, 0]


def test_engine_rejects_bad_configs():
  _, _, data = _linear_problem([2, 2])
  with pytest.raises(ValueError, match='exactly one of local.steps and local.epochs'):
    rounds.Federated(_squared, data, local=rounds.Local(optax.sgd(0.1), steps=1, epochs=1),
                     sampler=sampling.everyone(2))
  with pytest.raises(ValueError, match='draws from 3 clients, the data has 2'):
    rounds.Federated(_squared, data, local=rounds.Local(optax.sgd(0.1), steps=1), sampler=sampling.everyone(3))


def test_registry_builds_algorithms():
  assert {'fedavg', 'fedavgm', 'fedadam', 'fedyogi', 'fedprox'} <= set(registry.federated.names())
  assert isinstance(registry.federated.build('fedadam', learning_rate=0.1), rounds.Algorithm)
