"""Tiny Shakespeare split by speaker (the LEAF recipe): FedAvg against FedAdam on a small character model.

Each speaker is a client (:func:`decentral.federated.partitions.by_speaker`: ``context``-character windows and the
next character; the ``num_clients`` most talkative speakers, each with its first ``max_samples`` windows); the
last ``test_fraction`` of every client's windows are held out (LEAF's per-user split) and pooled into the test set.
The model embeds the window's characters (``embed`` dims each), then one hidden layer of ``hidden`` units predicts
the next character. FedAvg (server SGD lr 1) and FedAdam (Adam on the pseudo-gradient) share the clients' local
SGD; reported: next-character accuracy on the held-out windows per round, and the final.

``data_dir``: a folder with ``input.txt`` (``../shared/data/tinyshakespeare``); '' uses the small embedded text of
:mod:`experiments.lib.common.data`.
"""

from __future__ import annotations

import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from decentral.federated import partitions, rounds, sampling
from experiments.lib.common import data as data_lib
from experiments.lib.federated import benchmark, common


def _model(vocab, context, embed, hidden, key):
  k1, k2, k3 = jax.random.split(key, 3)
  return {'embed': jax.random.normal(k1, (vocab, embed)) * 0.1,
          'w1': jax.random.normal(k2, (context * embed, hidden)) * math.sqrt(2.0 / (context * embed)),
          'b1': jnp.zeros(hidden),
          'w2': jax.random.normal(k3, (hidden, vocab)) * math.sqrt(1.0 / hidden), 'b2': jnp.zeros(vocab)}


def _logits(params, x):
  h = params['embed'][x].reshape(x.shape[0], -1)
  h = jax.nn.relu(h @ params['w1'] + params['b1'])
  return h @ params['w2'] + params['b2']


def _loss(params, batch):
  logits = _logits(params, batch['x'])
  return -jnp.take_along_axis(jax.nn.log_softmax(logits), batch['y'][:, None], axis=1)[:, 0]


def problem(c) -> common.Problem:
  if c.data_dir:
    path = os.path.join(c.data_dir, 'input.txt') if os.path.isdir(c.data_dir) else c.data_dir
    with open(path, encoding='utf-8') as f:
      text = f.read()
  else:
    text = data_lib.EMBEDDED_TEXT
  clients = partitions.by_speaker(text, seq_len=c.context, min_samples=c.min_samples, max_clients=c.num_clients,
                                  max_samples=c.max_samples)
  x, y, counts = clients.data.arrays['x'], clients.data.arrays['y'], clients.data.counts
  train_parts, test_x, test_y, flat_x, flat_y = [], [], [], [], []
  offset = 0
  for i, n in enumerate(counts):
    n_test = max(1, int(round(c.test_fraction * n)))
    flat_x.append(x[i, :n - n_test])
    flat_y.append(y[i, :n - n_test])
    train_parts.append(np.arange(offset, offset + n - n_test))
    offset += n - n_test
    test_x.append(x[i, n - n_test:n])
    test_y.append(y[i, n - n_test:n])
  data = partitions.pad({'x': np.concatenate(flat_x), 'y': np.concatenate(flat_y)}, train_parts)
  params = _model(len(clients.vocab), c.context, c.embed, c.hidden, jax.random.key(c.seed))
  return common.Problem(data, jnp.asarray(np.concatenate(test_x)), jnp.asarray(np.concatenate(test_y)), params,
                        _loss, _logits)


def run(c, writer) -> list[dict]:
  prob = problem(c)
  args = benchmark.parse_args(c.method_args)
  local = rounds.Local(optax.sgd(c.local_learning_rate), steps=c.local_steps, batch_size=c.batch_size)
  rows = []
  for name in c.methods.split(','):
    out = common.train(prob, benchmark.build(name, args), local=local,
                       sampler=sampling.uniform(prob.data.num_clients, c.per_round), num_rounds=c.rounds,
                       eval_every=c.eval_every, target=c.target, seed=c.seed, writer=writer, tag={'method': name})
    rows.append({'method': name, 'final_accuracy': out['final_accuracy'], 'rounds_to_target': out['rounds_to_target'],
                 'target': c.target, 'clients': prob.data.num_clients, 'rounds': c.rounds,
                 'curve': out['curve'], 'seconds': out['seconds']})
  writer.results({'rows': rows})
  writer.text(table(rows))
  return rows


def table(rows: list[dict]) -> str:
  lines = [f"{'method':<10} {'final next-char acc':>20} {'rounds to target':>17} {'s':>6}"]
  for r in rows:
    hit = '-' if r['rounds_to_target'] is None else str(r['rounds_to_target'])
    lines.append(f"{r['method']:<10} {r['final_accuracy']:>20.4f} {hit:>17} {r['seconds']:>6.1f}")
  lines.append(f"({rows[0]['clients']} speakers, {rows[0]['rounds']} rounds, target {rows[0]['target']})")
  return '\n'.join(lines)


CLAIMS = ()
