"""The cost of the federated machinery: one round of the engine against the same local steps run bare.

    python benchmarks/bench_federated.py                     # digits MLP, 100 clients, 10 a round, K = 10, b = 16
    python benchmarks/bench_federated.py --hidden=512 --rounds=20

A round of :class:`decentral.federated.Federated` (FedAvg, backend vmap, one jitted function) does: sample the
clients, gather their padded rows and table rows, shuffle each client's rows, run K masked local SGD steps per
client on the worker axis, aggregate with collectives, step the server optimizer, scatter the table. The baseline
runs the same K SGD steps for the same m clients on batches gathered beforehand (a vmap over clients of a scan
over steps, no masks, no shuffle, no sampling, no aggregation). Both are timed compiled, the fastest of ``--rounds``
calls timed in alternation. Printed: both times and their ratio, and an engine variant with the rows in stored
order (no shuffle), which splits the overhead into the shuffle and the rest (masks, the gather of the padded rows,
sampling, aggregation, the server step, the table).

Measured (2 loaded CPU cores, jax 0.10): digits MLP 64-64-10, 10 of 100 clients, K = 10, b = 16: bare 1.1 ms,
round 2.1-2.3 ms (ratio 1.9-2.1), of the 1.1-1.2 ms overhead 0.7 ms is the shuffle (one argsort of the padded
rows per pass per client: with clients smaller than a batch every step is a new pass) and 0.45 ms the rest.
Not a test: timings never gate CI.
"""

from __future__ import annotations

import argparse
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from decentral.federated import fedopt, partitions, rounds, sampling


def best_of(fns, repeats):
  """The fastest of ``repeats`` calls of each function, timed in alternation so that load slows all alike."""
  best = [math.inf] * len(fns)
  for _ in range(repeats):
    for i, fn in enumerate(fns):
      start = time.perf_counter()
      jax.block_until_ready(fn())
      best[i] = min(best[i], time.perf_counter() - start)
  return best


def mlp(key, sizes):
  keys = jax.random.split(key, len(sizes) - 1)
  return [{'w': jax.random.normal(k, (a, b)) * math.sqrt(2.0 / a), 'b': jnp.zeros(b)}
          for k, a, b in zip(keys, sizes[:-1], sizes[1:])]


def loss_fn(params, batch):
  x = batch['x']
  for layer in params[:-1]:
    x = jax.nn.relu(x @ layer['w'] + layer['b'])
  logits = x @ params[-1]['w'] + params[-1]['b']
  return -jnp.take_along_axis(jax.nn.log_softmax(logits), batch['y'][:, None], axis=1)[:, 0]


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--clients', type=int, default=100)
  parser.add_argument('--per-round', type=int, default=10)
  parser.add_argument('--steps', type=int, default=10)
  parser.add_argument('--batch', type=int, default=16)
  parser.add_argument('--hidden', type=int, default=64)
  parser.add_argument('--alpha', type=float, default=0.1)
  parser.add_argument('--rounds', type=int, default=100)
  args = parser.parse_args()

  from sklearn.datasets import load_digits
  x, y = load_digits(return_X_y=True)
  x = (x / 16.0).astype(np.float32)
  parts = partitions.dirichlet(y, args.clients, args.alpha, seed=0)
  data = partitions.pad({'x': x, 'y': y.astype(np.int32)}, parts)
  params = mlp(jax.random.key(0), (64, args.hidden, 10))
  local = rounds.Local(optax.sgd(0.05), steps=args.steps, batch_size=args.batch)
  sampler = sampling.uniform(args.clients, args.per_round)

  def engine(algorithm):
    fed = rounds.Federated(loss_fn, data, local=local, sampler=sampler, algorithm=algorithm)
    state = fed.init(params, jax.random.key(1))
    state, _ = fed.round(state)  # compile
    return lambda: fed.round(state)

  in_order = lambda d, count, key, ctx: jnp.arange(jax.tree.leaves(d)[0].shape[0], dtype=jnp.int32)
  full = engine(fedopt.fedavg())
  no_shuffle = engine(fedopt.fedavg()._replace(order=in_order))

  # The bare baseline: the same m x K steps on batches gathered beforehand.
  rng = np.random.default_rng(0)
  idx = rng.integers(0, len(y), size=(args.per_round, args.steps, args.batch))
  batches = {'x': jnp.asarray(x[idx]), 'y': jnp.asarray(y[idx].astype(np.int32))}
  tx = optax.sgd(0.05)

  def client(p, client_batches):
    def step(carry, batch):
      q, s = carry
      g = jax.grad(lambda w: jnp.mean(loss_fn(w, batch)))(q)
      u, s = tx.update(g, s, q)
      return (optax.apply_updates(q, u), s), None
    (q, _), _ = jax.lax.scan(step, (p, tx.init(p)), client_batches)
    return q

  bare_fn = jax.jit(jax.vmap(client, in_axes=(None, 0)))
  jax.block_until_ready(bare_fn(params, batches))
  bare = lambda: bare_fn(params, batches)

  t_bare, t_full, t_plain = best_of((bare, full, no_shuffle), args.rounds)
  n_params = sum(p.size for p in jax.tree.leaves(params))
  print(f'{args.per_round} of {args.clients} clients, K={args.steps}, b={args.batch}, MLP 64-{args.hidden}-10 '
        f'({n_params} parameters), max client size {data.max_size}, jax {jax.__version__}, {jax.devices()[0]}')
  print(f'bare local steps (vmap x scan):          {t_bare * 1e3:8.3f} ms')
  print(f'federated round (FedAvg, vmap):          {t_full * 1e3:8.3f} ms   ratio {t_full / t_bare:5.2f}')
  print(f'  the same with rows in stored order:    {t_plain * 1e3:8.3f} ms   ratio {t_plain / t_bare:5.2f}')
  print(f'  the shuffle costs {max(t_full - t_plain, 0) * 1e3:.3f} ms; the rest of the overhead (masks, the gather '
        f'of the padded rows, sampling, aggregation, server step, table) {max(t_plain - t_bare, 0) * 1e3:.3f} ms')


if __name__ == '__main__':
  main()
