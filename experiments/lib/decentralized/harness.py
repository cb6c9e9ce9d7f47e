"""What the decentralized sub-experiments share: digits split over workers, an MLP per worker, a jitted run of
local steps on the worker axis, and the metrics (every worker's test accuracy, the consensus distance).

Every worker holds its own parameters (stacked on a leading axis of n) and its own data (padded to the largest
share; a worker samples its batches from its own rows only). A call of the run function takes ``steps`` steps;
each step is one ``tx.update`` per worker on a fresh minibatch, so a transform that gossips every K-th step (DFedSAM,
the single merge) sees K calls per round. Batches are a pure function of (seed, worker, step).
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from decentral import axis
from experiments.lib.common import data as data_lib
from experiments.lib.common import models

AXIS = 'workers'


class Shards(NamedTuple):
  x: np.ndarray        # (n, rows, 64) float32, each worker's rows padded by repetition
  y: np.ndarray        # (n, rows) int32
  counts: np.ndarray   # (n,) real rows per worker
  x_test: np.ndarray   # (m, 64)
  y_test: np.ndarray


def shards(num_workers: int, alpha: float, seed: int = 0) -> Shards:
  """Digits (scikit-learn's, no download) split over workers: Dirichlet(alpha) label shares, or an IID split into
  equal parts when ``alpha`` is 0."""
  ds = data_lib.load_digits(seed=seed)
  x, y = ds.x_train.reshape(len(ds.x_train), -1), ds.y_train
  if alpha:
    parts = data_lib.dirichlet_split(y, num_workers, alpha, seed)
  else:
    parts = np.array_split(np.random.default_rng(seed).permutation(len(y)), num_workers)
  parts = [p if len(p) else np.asarray([0]) for p in parts]  # an empty share would have nothing to sample
  rows = max(len(p) for p in parts)
  idx = np.stack([np.resize(p, rows) for p in parts])
  return Shards(x[idx], y[idx], np.asarray([len(p) for p in parts]), ds.x_test.reshape(len(ds.x_test), -1),
                ds.y_test)


def table(rows: list[dict], columns: list[str]) -> str:
  """Rows as aligned text columns (floats to 4 digits)."""
  cells = [[c for c in columns]] + [[f'{r[c]:.4f}' if isinstance(r.get(c), float) else str(r.get(c, '-'))
                                     for c in columns] for r in rows]
  widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
  return '\n'.join('  '.join(v.ljust(w) for v, w in zip(row, widths)) for row in cells)


def mlp(hidden: int):
  return models.make('mlp', hidden=(hidden,))


def init(model, num_workers: int, seed: int, shared: bool = True) -> Any:
  """Stacked parameters: every worker from the same initialisation, or each from its own seed."""
  x = jnp.zeros((1, 64))
  if shared:
    one = model.init(jax.random.key(seed), x)
    return jax.tree.map(lambda p: jnp.broadcast_to(p, (num_workers,) + p.shape), one)
  return jax.vmap(lambda k: model.init(k, x))(jax.random.split(jax.random.key(seed), num_workers))


def runner(model, tx: optax.GradientTransformation, data: Shards, *, batch_size: int, seed: int = 0,
           loss_oracle: bool = False, active: np.ndarray | None = None):
  """The jitted ``(params, opt_state, start, steps) -> (params, opt_state)``: steps start, ..., start + steps - 1.

  The step count is traced (a while loop), so one compilation serves runs of any length.
  ``loss_oracle``: pass the batch loss as ``loss_fn`` (DFedSAM's second gradient on the same batch).
  ``active``: optional (n,) mask; a worker outside it has no data (a relay): its gradient is zero.
  """

  def loss(params, xb, yb):
    return models.cross_entropy(model.apply(params, xb), yb)

  def worker(params, state, x, y, count, on, start, steps):
    me = axis.worker_index(AXIS)

    def body(t, carry):
      params, state = carry
      key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), me), t)
      idx = jax.random.randint(key, (batch_size,), 0, count)
      xb, yb = x[idx], y[idx]
      grads = jax.tree.map(lambda g: g * on, jax.grad(loss)(params, xb, yb))
      extra = {'loss_fn': lambda p: on * loss(p, xb, yb)} if loss_oracle else {}
      updates, state = tx.update(grads, state, params, **extra)
      return optax.apply_updates(params, updates), state

    return jax.lax.fori_loop(start, start + steps, body, (params, state))

  n = len(data.counts)
  run = axis.run(worker, n, axis_name=AXIS, in_axes=(0, 0, 0, 0, 0, 0, None, None))
  x, y, counts = jnp.asarray(data.x), jnp.asarray(data.y), jnp.asarray(data.counts)
  on = jnp.ones(n) if active is None else jnp.asarray(active, jnp.float32)
  return lambda params, state, start, steps: run(params, state, x, y, counts, on, jnp.asarray(start, jnp.int32),
                                                 jnp.asarray(steps, jnp.int32))


def init_state(tx, params, num_workers: int):
  return axis.run(tx.init, num_workers, axis_name=AXIS)(params)


def accuracies(model, params, data: Shards) -> np.ndarray:
  """(n,) test accuracy of every worker's model."""
  return np.asarray(_accuracies(model, params, jnp.asarray(data.x_test), jnp.asarray(data.y_test)))


@functools.partial(jax.jit, static_argnums=0)
def _accuracies(model, params, x, y):
  return jax.vmap(lambda p: jnp.mean(jnp.argmax(model.apply(p, x), -1) == y))(params)


def average(params) -> Any:
  """The exact average model (what a global merge or a server computes), stacked back to n copies."""
  return jax.tree.map(lambda p: jnp.broadcast_to(p.mean(0), p.shape), params)


def consensus_distance(params) -> float:
  """(1/n) sum_i |x_i - xbar|^2 over the whole parameter vector."""
  leaves = jax.tree.leaves(params)
  return float(sum(jnp.sum((p - p.mean(0)) ** 2) for p in leaves) / leaves[0].shape[0])
