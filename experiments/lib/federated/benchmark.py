"""Every registered federated method on one partitioned image task, at the same budget.

Digits (or MNIST via ``data_dir``) over ``num_clients`` clients by a Dirichlet(alpha) label split for each alpha
in ``alphas``; ``per_round`` clients sampled uniformly each round; every method runs the same local training
(``local_steps`` SGD steps of batch ``batch_size``) for ``rounds`` rounds. Reported per (alpha, method): the first
evaluated round at which test accuracy reaches ``target``, the final accuracy, and the bytes sent (uplink, dense
float32 updates: every method here sends one model-sized vector per participant and round).

Methods are built from :data:`decentral.registry.federated` by name, with ``method_args``
(``'fedadam: learning_rate=0.03; fedprox: mu=0.01'``) overriding the registered defaults.
"""

from __future__ import annotations

import ast

import optax

from decentral import registry
from decentral.federated import rounds, sampling
from experiments.lib.federated import common


def parse_args(spec: str) -> dict[str, dict]:
  """``'name: k=v k=v; name2: k=v'`` -> ``{name: {k: v}}`` (values are Python literals)."""
  out: dict[str, dict] = {}
  for part in filter(None, (p.strip() for p in spec.split(';'))):
    name, _, rest = part.partition(':')
    out[name.strip()] = {k: ast.literal_eval(v) for k, v in (kv.split('=') for kv in rest.split())}
  return out


def build(name: str, args: dict[str, dict]) -> rounds.Algorithm:
  """The registered method ``name`` (a variant ``name@tag`` uses ``args['name@tag']`` on entry ``name``)."""
  return registry.federated.build(name.split('@')[0], **args.get(name, {}))


def run(c, writer) -> list[dict]:
  args = parse_args(c.method_args)
  rows = []
  for alpha in [float(a) for a in str(c.alphas).split(',')]:
    problem = common.image_problem(data_dir=c.data_dir, num_clients=c.num_clients, alpha=alpha, hidden=c.hidden,
                                   seed=c.seed, max_train=c.max_train)
    local = rounds.Local(optax.sgd(c.local_learning_rate), steps=c.local_steps, batch_size=c.batch_size)
    for name in c.methods.split(','):
      out = common.train(problem, build(name, args), local=local,
                         sampler=sampling.uniform(c.num_clients, c.per_round), num_rounds=c.rounds,
                         eval_every=c.eval_every, target=c.target, seed=c.seed, backend=c.backend, writer=writer,
                         tag={'alpha': alpha, 'method': name})
      rows.append({'alpha': alpha, 'method': name, 'final_accuracy': out['final_accuracy'],
                   'rounds_to_target': out['rounds_to_target'], 'target': c.target, 'rounds': c.rounds,
                   'bytes_total': out['bytes_total'], 'seconds': out['seconds'], 'finite': out['finite']})
  writer.results({'rows': rows})
  writer.text(table(rows))
  return rows


def table(rows: list[dict]) -> str:
  lines = [f"{'alpha':>6} {'method':<16} {'final acc':>9} {'rounds to target':>17} {'MB sent':>8} {'s':>6}"]
  for r in rows:
    hit = '-' if r['rounds_to_target'] is None else str(r['rounds_to_target'])
    lines.append(f"{r['alpha']:>6} {r['method']:<16} {r['final_accuracy']:>9.4f} {hit:>17} "
                 f"{r['bytes_total'] / 1e6:>8.2f} {r['seconds']:>6.1f}")
  lines.append(f"(target accuracy {rows[0]['target']}, {rows[0]['rounds']} rounds; '-': not reached)")
  return '\n'.join(lines)


CLAIMS = ()
