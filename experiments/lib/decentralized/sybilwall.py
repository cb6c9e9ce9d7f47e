"""SybilWall: a targeted Sybil attack on gossip learning, with and without the probabilistic gossip of
non-neighbours' updates.

Honest nodes on a random regular graph train a softmax classifier on their Dirichlet share of digits; an attacker
runs k Sybils (a clique) that train on the same data with every 1 relabelled 7, scale their update by ``boost``
(model replacement) and each hold one attack edge to a distinct random honest node. Every round each node
takes ``local_steps`` SGD steps, records its update, and mixes its neighbours' models:

- ``plain``: Metropolis-Hastings gossip averaging (``decentral.metropolis_hastings`` weights);
- ``foolsgold p=0``: the SybilWall/FoolsGold weights from the histories of its neighbours only;
- ``sybilwall p=P``: the same weights from the histories of every node its gossip reached
  (``decentral.sybil_gossip_step`` with forwarding probability P, ``decentral.sybilwall_mix``).

Sybils forward like honest nodes (a conservative attacker would not; the model here is the paper's network part,
not an adversarial relay). Reported: the attack success (share of the test 1s that honest models classify as 7)
and the honest nodes' clean accuracy, after the last round, per number of Sybils.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from decentral.p2p import sybil_gossip, topology
from experiments.lib.common import claims
from experiments.lib.decentralized import harness

COLUMNS = ['sybils', 'defence', 'attack_success', 'clean_accuracy']


def _graph(config, sybils):
  n_h = config.honest
  n = n_h + sybils
  rng = np.random.default_rng(config.seed)
  adj = np.zeros((n, n), bool)
  while True:  # a random regular graph on the honest nodes: a union of random perfect matchings, kept if connected
    adj[:n_h, :n_h] = False
    for _ in range(config.degree):
      perm = rng.permutation(n_h)
      a, b = perm[: n_h // 2], perm[n_h // 2: 2 * (n_h // 2)]
      adj[a, b] = adj[b, a] = True
    np.fill_diagonal(adj, False)
    if topology.spectral_gap(topology.metropolis_hastings(adj[:n_h, :n_h])) > 1e-6:
      break
  adj[n_h:, n_h:] = True
  np.fill_diagonal(adj, False)
  victims = rng.choice(n_h, sybils, replace=False)
  adj[victims, n_h + np.arange(sybils)] = adj[n_h + np.arange(sybils), victims] = True
  return adj


def _data(config, sybils):
  data = harness.shards(config.honest, config.dirichlet, config.seed)
  x, y, counts = data.x, data.y, data.counts
  pool = np.concatenate([x[i, :c] for i, c in enumerate(counts)])
  labels = np.concatenate([data.y[i, :c] for i, c in enumerate(counts)])
  rows = x.shape[1]
  pick = np.resize(np.random.default_rng(config.seed + 1).permutation(len(pool)), rows)
  flipped = np.where(labels[pick] == config.source, config.target, labels[pick])
  poisoned_x = np.broadcast_to(pool[pick], (sybils, rows, 64))
  xs = np.concatenate([x, poisoned_x])
  ys = np.concatenate([y, np.broadcast_to(flipped, (sybils, rows))])
  cs = np.concatenate([counts, np.full(sybils, rows)])
  return xs.astype(np.float32), ys.astype(np.int32), cs, data.x_test, data.y_test


def _trainer(config):
  def loss(w, xb, yb):
    logits = xb @ w['kernel'] + w['bias']
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), yb[:, None], 1))

  @jax.jit
  def train(models, x, y, counts, round_, same_batches):
    def one(w, xi, yi, count, i):
      def body(t, w):
        stream = jnp.where(same_batches[i], 0, i)  # the Sybils draw the same batches: one attacker's updates
        key = jax.random.fold_in(jax.random.fold_in(jax.random.key(config.seed), stream), round_ * 1000 + t)
        idx = jax.random.randint(key, (config.batch_size,), 0, count)
        g = jax.grad(loss)(w, xi[idx], yi[idx])
        return jax.tree.map(lambda p, gp: p - config.learning_rate * gp, w, g)
      return jax.lax.fori_loop(0, config.local_steps, body, w)
    return jax.vmap(one)(models, x, y, counts, jnp.arange(x.shape[0]))

  return train


def _flat(w):
  return jnp.concatenate([w['kernel'].reshape(w['kernel'].shape[0], -1), w['bias']], axis=1)


def _unflat(v, like):
  d = like['kernel'].shape[1] * like['kernel'].shape[2]
  return {'kernel': v[:, :d].reshape(like['kernel'].shape), 'bias': v[:, d:]}


def _run(config, sybils, defence, forward_prob, train, writer):
  adj = _graph(config, sybils)
  n, n_h = len(adj), config.honest
  x, y, counts, x_test, y_test = _data(config, sybils)
  same = jnp.asarray(np.arange(n) >= n_h)
  models = {'kernel': jnp.zeros((n, 64, 10)), 'bias': jnp.zeros((n, 10))}
  state = sybil_gossip.sybil_gossip_init(n, 64 * 10 + 10, seed=config.seed)
  plain = jnp.asarray(topology.metropolis_hastings(adj), jnp.float32)
  for r in range(config.rounds):
    trained = train(models, jnp.asarray(x), jnp.asarray(y), jnp.asarray(counts), r, same)
    flat, prev = _flat(trained), _flat(models)
    flat = jnp.where(same[:, None], prev + config.boost * (flat - prev), flat)  # the Sybils boost their update
    if defence == 'plain':
      mixed = plain @ flat
    else:
      state = sybil_gossip.sybil_gossip_step(state, flat - prev, adj, forward_prob=forward_prob)
      mixed = sybil_gossip.sybilwall_mix(state, flat, adj)
    models = _unflat(mixed, models)
  pred = np.asarray(jnp.argmax(jnp.einsum('vd,ndc->nvc', jnp.asarray(x_test), models['kernel'])
                               + models['bias'][:, None], -1))[:n_h]
  ones = y_test == config.source
  row = {'sybils': sybils, 'defence': defence, 'attack_success': float(np.mean(pred[:, ones] == config.target)),
         'clean_accuracy': float(np.mean(pred == y_test[None]))}
  writer.metrics([row])
  return row


def run(config, writer) -> list[dict]:
  train = _trainer(config)
  defences = [('plain', 0.0), ('foolsgold p=0', 0.0)] + [
      (f'sybilwall p={p:g}', p) for p in (float(v) for v in str(config.forward_probs).split(','))]
  rows = []
  for sybils in (int(v) for v in str(config.sybils).split(',')):
    for name, p in defences:
      rows.append(_run(config, sybils, name, p, train, writer))
      print(harness.table(rows[-1:], COLUMNS).splitlines()[-1], flush=True)
  writer.results({'rows': rows})
  writer.text(table(rows))
  return rows


def table(rows) -> str:
  return harness.table(rows, COLUMNS)


def _measure(outputs) -> dict:
  return {f"{r['sybils']}/{r['defence']}": {'attack_success': r['attack_success'],
                                            'clean_accuracy': r['clean_accuracy']} for r in outputs['rows']}


def _assess(m) -> claims.Assessment:
  counts = sorted({int(k.split('/')[0]) for k in m})
  walls = sorted({k.split('/')[1] for k in m if 'sybilwall' in k})
  wall = walls[-1]
  ours = '; '.join(f"{s} Sybils: attack success plain {m[f'{s}/plain']['attack_success']:.2f}, FoolsGold p=0 "
                   f"{m[f'{s}/foolsgold p=0']['attack_success']:.2f}, {wall} {m[f'{s}/{wall}']['attack_success']:.2f} "
                   f"(clean {m[f'{s}/{wall}']['clean_accuracy']:.2f})" for s in counts)
  drop = {s: m[f'{s}/foolsgold p=0']['attack_success'] - m[f'{s}/{wall}']['attack_success'] for s in counts}
  lower = [s for s in counts if drop[s] > 0.02]
  flat = m[f'{counts[-1]}/{wall}']['attack_success'] <= m[f'{counts[0]}/{wall}']['attack_success'] + 0.05
  if len(lower) == len(counts) and flat:
    return claims.Assessment(ours, 'agree', 'gossip of non-neighbours lowers the attack success below '
                             'neighbourhood-only FoolsGold, and more Sybils do not help the attacker')
  if lower or flat:
    where = (f"gossip lowers the attack success with {', '.join(map(str, lower))} Sybils but not beyond 0.02 with "
             f"{', '.join(str(s) for s in counts if s not in lower)}" if lower else
             'gossip does not lower the attack success')
    return claims.Assessment(ours, 'partly', where + ('; more Sybils do not help the attacker' if flat else
                                                      '; more Sybils help the attacker'))
  return claims.Assessment(ours, 'disagree', 'gossip does not lower the attack success and more Sybils help')


CLAIMS = (
    claims.Claim(
        id='sybilwall_gossip', experiment='decentralized', title='SybilWall: gossip against Sybil poisoning',
        paper='Werthenbach and Pouwelse 2023', arxiv='2306.15044',
        claim='similarity-based aggregation with probabilistic gossip of non-neighbour models resists targeted '
              'Sybil poisoning in decentralized learning, and many Sybils bring the attacker less than few',
        paper_number='consistent accuracy across Sybil attack scenarios; utility of more Sybils diminishes',
        measure=_measure, assess=_assess, overrides={'experiment': 'sybilwall'}),
)
