"""Shared pieces of the federated sub-experiments: a partitioned image problem, a small MLP, one method's run.

:func:`image_problem` loads digits (or MNIST from ``data_dir``), splits the training set over N clients (Dirichlet
over labels with ``alpha``, or IID for ``alpha <= 0``) and builds a one-hidden-layer MLP; :func:`train` runs one
method through :class:`decentral.federated.Federated` and returns its accuracy curve, the rounds it needed to reach
a target accuracy and the bytes it sent (:mod:`decentral.ledger`).
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from decentral import ledger
from decentral.federated import partitions, rounds, sampling
from experiments.lib.common import data as data_lib

PyTree = Any


class Problem(NamedTuple):
  data: partitions.ClientData
  x_test: jax.Array
  y_test: jax.Array
  params: PyTree                                   # the initial global model
  loss_fn: Callable[[PyTree, PyTree], jax.Array]   # per-example cross-entropy
  logits: Callable[[PyTree, jax.Array], jax.Array]


def mlp_init(key, sizes) -> PyTree:
  """He-initialised dense layers ``sizes[0] -> ... -> sizes[-1]`` (biases zero)."""
  keys = jax.random.split(key, len(sizes) - 1)
  return [{'w': jax.random.normal(k, (a, b)) * math.sqrt(2.0 / a), 'b': jnp.zeros(b)}
          for k, a, b in zip(keys, sizes[:-1], sizes[1:])]


def mlp_logits(params, x):
  for layer in params[:-1]:
    x = jax.nn.relu(x @ layer['w'] + layer['b'])
  return x @ params[-1]['w'] + params[-1]['b']


def cross_entropy(params, batch):
  logits = mlp_logits(params, batch['x'])
  return -jnp.take_along_axis(jax.nn.log_softmax(logits), batch['y'][:, None], axis=1)[:, 0]


def image_problem(*, data_dir: str = '', num_clients: int = 100, alpha: float = 0.1, hidden: int = 64,
                  seed: int = 0, min_size: int = 0, max_train: int = 0) -> Problem:
  """Digits (or MNIST from ``data_dir``; the first ``max_train`` training images if > 0) over ``num_clients``."""
  ds = data_lib.load_images(data_dir or None, seed=seed)
  x, y = ds.x_train.reshape(len(ds.x_train), -1), ds.y_train
  if max_train:
    x, y = x[:max_train], y[:max_train]
  parts = (partitions.iid(len(y), num_clients, seed=seed) if alpha <= 0 else
           partitions.dirichlet(y, num_clients, alpha, seed=seed, num_classes=ds.num_classes, min_size=min_size))
  data = partitions.pad({'x': x.astype(np.float32), 'y': y.astype(np.int32)}, parts)
  params = mlp_init(jax.random.key(seed), (x.shape[1], hidden, ds.num_classes))
  return Problem(data, jnp.asarray(ds.x_test.reshape(len(ds.x_test), -1)), jnp.asarray(ds.y_test), params,
                 cross_entropy, mlp_logits)


_accuracy = jax.jit(lambda logits_fn, params, x, y: jnp.mean(jnp.argmax(logits_fn(params, x), -1) == y),
                    static_argnums=0)


def accuracy(problem: Problem, params) -> float:
  """Test accuracy of ``params``."""
  return float(_accuracy(problem.logits, params, problem.x_test, problem.y_test))


def rounds_to(curve: list[tuple[int, float]], target: float) -> int | None:
  """The first evaluated round whose accuracy reaches ``target`` (None if never)."""
  return next((r for r, a in curve if a >= target), None)


def train(problem: Problem, algorithm: rounds.Algorithm, *, local: rounds.Local, sampler: sampling.Sampler,
          num_rounds: int, eval_every: int = 5, target: float = 0.9, seed: int = 0, backend: str = 'vmap',
          writer=None, tag: dict | None = None, server_optimizer=None, fed: rounds.Federated | None = None) -> dict:
  """Runs ``num_rounds`` rounds of ``algorithm`` from the run key ``seed``; returns curve, final accuracy, rounds to
  ``target``, bytes. Pass the ``fed`` of an earlier call to reuse its compiled round (other seeds)."""
  if fed is None:
    fed = rounds.Federated(problem.loss_fn, problem.data, local=local, sampler=sampler, algorithm=algorithm,
                           backend=backend, server_optimizer=server_optimizer)
  state = fed.init(problem.params, jax.random.key(seed))
  led = ledger.Ledger(problem.data.num_clients)
  curve, rows, started = [], [], time.perf_counter()
  for t in range(1, num_rounds + 1):
    state, metrics = fed.round(state)
    rounds.record(led, t, metrics)
    if t % eval_every == 0 or t == num_rounds:
      acc = accuracy(problem, state.params)
      curve.append((t, acc))
      rows.append({**(tag or {}), 'round': t, 'accuracy': acc, 'bytes_total': led.total,
                   'train_loss': float(np.mean(np.asarray(metrics.loss)[np.asarray(metrics.active)]))
                   if np.any(metrics.active) else float('nan')})
  if writer is not None:
    writer.metrics(rows)
  return {'curve': curve, 'final_accuracy': curve[-1][1], 'rounds_to_target': rounds_to(curve, target),
          'bytes_total': led.total, 'seconds': time.perf_counter() - started, 'fed': fed,
          'finite': bool(all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state.params)))}
