"""The robust-aggregation grid: every attack against every rule, n workers, f faulty, Dirichlet label skew.

Two algorithms, both written per worker with collectives and run by ``decentral.axis.run`` (``config.backend``:
vmap in one process; shard_map or pmap over devices and over processes, ``experiments/launch.py``):

- a robust rule R (mean, median, trimmed mean, Krum, geometric median, NNM + trimmed mean): every worker keeps
  an EMA momentum of its gradients, the last f workers replace theirs by the attack, everyone aggregates with R
  and steps -- ``chain(ema(beta), byzantine(attack), aggregate(R), sgd(lr))``, ByzFL's D-SGD with worker momentum;
- MoNNA (beta in {0, 0.99}): each worker keeps its own model, the faulty ones send the attack on the honest
  half-step models, everyone averages the n - f received models nearest to its own (``decentral.monna``).

The grid is batched: for one (rule, f) each worker runs every configuration (attack x alpha x beta) in one
``lax.scan`` over steps, vmapped over configurations, the attack picked by ``lax.switch`` on a per-configuration
index (so all cheap attacks are evaluated once per step; the line-searched attacks get their own batch). Data
stay on the device; each worker samples its batch from its Dirichlet shard inside the step.
"""

from __future__ import annotations

import functools
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

import decentral
from decentral import axis
from experiments.lib.common import data as data_lib
from experiments.lib.common import claims, models, results as results_lib
from experiments.lib.common import progress as progress_lib

CHEAP_ATTACKS = ('sign_flipping', 'inner_product_manipulation', 'a_little_is_enough', 'fall_of_empires', 'mimic',
                 'gaussian', 'not_a_number', 'label_flipping')
OPTIMAL_ATTACKS = {'optimal_alie': 'a_little_is_enough', 'optimal_ipm': 'inner_product_manipulation'}
SERVER_RULES = {
    'mean': decentral.mean,
    'median': decentral.median,
    'trimmed_mean': decentral.trimmed_mean,
    'krum': decentral.krum,
    'geometric_median': decentral.geometric_median,
    'nnm+trimmed_mean': decentral.nnm_then(decentral.trimmed_mean),
}


def _monna_worst_case(results: list[dict]) -> dict:
  worst = worst_case(results)
  out = {}
  for (rule, f, alpha), (acc, attack) in sorted(worst.items()):
    out[f'{rule} f={f} alpha={alpha:g}'] = {'accuracy': acc, 'attack': attack}
  return out


def _assess_monna(m) -> claims.Assessment:
  get = lambda rule, f, alpha: m.get(f'{rule} f={f} alpha={alpha:g}', {}).get('accuracy', float('nan'))
  clean = get('mean', 0, 1)
  cells = [f"D-SGD without attack {clean:.3f}"]
  for alpha in (1, 0.1):
    cells.append(f"alpha={alpha:g}, f=3 worst case: MoNNA(0.99) {get('monna(beta=0.99)', 3, alpha):.3f}, "
                 f"MoNNA(0) {get('monna(beta=0)', 3, alpha):.3f}, D-SGD {get('mean', 3, alpha):.3f}")
  ours = '; '.join(cells)
  monna, plain, mean = get('monna(beta=0.99)', 3, 1), get('monna(beta=0)', 3, 1), get('mean', 3, 1)
  if monna >= clean - 0.05 and mean < 0.5:
    verdict, why = 'agree', 'MoNNA(0.99) within 5 points of attack-free D-SGD in the worst case; D-SGD collapses'
  elif monna > max(mean, plain):
    verdict, why = 'partly', ('MoNNA(0.99) beats D-SGD and MoNNA(0) in the worst case, but loses more than 5 points '
                              'to attack-free D-SGD')
  else:
    verdict, why = 'disagree', 'MoNNA(0.99) is not the most robust of the three'
  if get('monna(beta=0.99)', 3, 0.1) < get('mean', 0, 0.1) - 0.05:
    why += '; under strong heterogeneity (alpha = 0.1) the gap is larger'
  return claims.Assessment(ours, verdict, why)


CLAIMS = (
    claims.Claim(
        id='robust_monna', experiment='robust', title='MoNNA under attack',
        paper='Farhadkhani et al. 2022', arxiv='2209.10931',
        claim='MoNNA (local momentum + nearest-neighbour averaging) keeps D-SGD\'s accuracy with f faulty workers, '
              'and its momentum is what makes it robust',
        paper_number='worst case over attacks close to attack-free D-SGD with beta = 0.99; beta = 0 and plain D-SGD '
                     'break (figures, n = 16 or 26 with f = 3 or 5 on MNIST/CIFAR-10)',
        measure=_monna_worst_case, assess=_assess_monna, preset='monna'),
)


def _split(config) -> list[str]:
  return [s.strip() for s in str(config).split(',') if s.strip()]


class Row(NamedTuple):
  """One line of the table: an algorithm with its momentum values (MoNNA rows share one batch over beta)."""
  rule: str
  betas: tuple[float, ...]

  def label(self, beta):
    return f'monna(beta={beta:g})' if self.rule == 'monna' else self.rule


def rows(config) -> list[Row]:
  out = []
  for name in _split(config.rules):
    if name == 'monna':
      out.append(Row('monna', tuple(float(b) for b in _split(config.monna_betas))))
    elif name in SERVER_RULES:
      out.append(Row(name, (float(config.momentum),)))
    else:
      raise ValueError(f'unknown rule {name!r}; known: monna, {", ".join(SERVER_RULES)}')
  return out


class Shards(NamedTuple):
  table: np.ndarray   # (n, L) sample indices per worker, padded by repetition
  count: np.ndarray   # (n,)


def shards(labels: np.ndarray, n: int, f: int, alpha: float, seed: int) -> Shards:
  """Dirichlet(alpha) label-skewed shards for the n - f honest workers; faulty worker j gets honest shard j mod
  (n - f) (used only by label flipping, whose faulty workers train on flipped copies). Redraws the split
  (seed, seed + 1, ...) until every honest worker has at least one sample."""
  honest = n - f
  for attempt in range(1000):
    parts = data_lib.dirichlet_split(labels, honest, alpha, seed=seed * 1000 + attempt)
    if min(len(p) for p in parts) > 0:
      break
  else:
    raise ValueError(f'no Dirichlet({alpha}) split gives every one of {honest} workers a sample')
  parts = parts + [parts[j % honest] for j in range(f)]
  width = max(len(p) for p in parts)
  table = np.stack([np.resize(p, width) for p in parts]).astype(np.int32)
  return Shards(table, np.array([len(p) for p in parts], np.int32))


def _attacked_rule(rule_name):
  """What a line-searched attack maximises: the rule, or for MoNNA its mean over the honest workers' pivots."""
  if rule_name == 'monna':
    return decentral.honest_pivot_mean(decentral.nearest_to_self)
  return SERVER_RULES[rule_name]


def _optimal_attack(rule, index, names):
  """ByzFL's line-searched ALIE or IPM, one search per configuration: both are a(tau) = c mean + tau v with
  (c, v) = (1, std) for ALIE and (0, -mean) for IPM, so the family is picked by the traced ``index``."""
  is_alie = jnp.asarray([OPTIMAL_ATTACKS[a] == 'a_little_is_enough' for a in names])[index]

  def attack(honest, *, f, key):
    mean, std = decentral.attacks.honest_mean(honest), decentral.attacks.honest_std(honest)
    base = jax.tree.map(lambda m: jnp.where(is_alie, m, 0), mean)
    direction = jax.tree.map(lambda m, s: jnp.where(is_alie, s, -m), mean, std)
    make = lambda tau: jax.tree.map(lambda b, v: b + tau * v, base, direction)

    def damage(tau):
      stacked = jax.tree.map(lambda h, a: jnp.concatenate([h, jnp.broadcast_to(a, (f,) + a.shape)]), honest,
                             make(tau))
      agg = rule(stacked, f=f, key=key)
      return jnp.sqrt(sum(jnp.vdot(a - m, a - m) for a, m in zip(jax.tree.leaves(agg), jax.tree.leaves(mean))))

    return make(decentral.attacks.line_maximize(damage))

  return attack


def _attack_branches(names, rule_name, f):
  """Functions (honest, key) -> attack vector for a lax.switch; label flipping sends its own (flag below)."""
  branches = []
  for name in names:
    if name == 'label_flipping':
      attack = lambda honest, **kw: jax.tree.map(lambda x: jnp.zeros(x.shape[1:], x.dtype), honest)
    else:
      attack = decentral.get_attack(name)
    branches.append(functools.partial(lambda a, honest, key: a(honest, f=f, key=key), attack))
  return branches


def _switch_attack(branches, index):
  def attack(honest, *, f, key):
    del f
    if len(branches) == 1:
      return branches[0](honest, key)
    return lax.switch(index, branches, honest, key)
  return attack


def make_group_runner(model, dataset, *, rule_name, f, n, attack_names, config):
  """A function of the configurations -> (each worker's test accuracy, the honest workers' mean loss curve) per
  configuration. The worker axis is outermost (``config.backend``: vmap in one process, shard_map or pmap over
  devices and processes); inside each worker the configurations are batched by vmap and the steps by a scan."""
  lr, batch, steps, honest = config.learning_rate, config.batch_size, config.steps, n - f
  x_all, y_all = jnp.asarray(dataset.x_train), jnp.asarray(dataset.y_train)
  optimal = bool(attack_names) and all(a in OPTIMAL_ATTACKS for a in attack_names)
  branches = _attack_branches(attack_names, rule_name, f) if f and not optimal else []
  flip_index = attack_names.index('label_flipping') if 'label_flipping' in attack_names else -1

  def make_tx(beta, attack_index):
    keep_own = attack_index == flip_index
    if optimal:
      attack = _optimal_attack(_attacked_rule(rule_name), attack_index, attack_names)
    else:
      attack = _switch_attack(branches, attack_index) if f else None
    if rule_name == 'monna':
      return decentral.monna(lr, f=f, axis_name='workers', beta=beta, attack=attack, keep_own=keep_own)
    parts = [optax.ema(beta, debias=False)]
    if f:
      parts.append(decentral.byzantine(attack, axis_name='workers', f=f, keep_own=keep_own))
    parts += [decentral.aggregate(SERVER_RULES[rule_name], axis_name='workers', f=f), optax.sgd(lr)]
    return optax.chain(*parts)

  def loss_fn(params, x, y):
    return models.cross_entropy(model.apply(params, x), y)

  def one_configuration(params, table, count, beta, attack_index):
    i = axis.worker_index('workers')
    tx = make_tx(beta, attack_index)

    def body(carry, t):
      params, opt_state = carry
      key = jax.random.split(jax.random.fold_in(jax.random.key(config.seed), t), n)[i]
      idx = table[jax.random.randint(key, (batch,), 0, count)]
      x, y = x_all[idx], y_all[idx]
      flip = (i >= honest) & (attack_index == flip_index)
      y = jnp.where(flip, decentral.flip_labels(y, dataset.num_classes), y)
      loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
      updates, opt_state = tx.update(grads, opt_state, params)
      honest_loss = lax.psum(jnp.where(i < honest, loss, 0.0), 'workers') / honest
      return (optax.apply_updates(params, updates), opt_state), honest_loss

    params = axis.varying(params, 'workers')  # each worker's own copy (shard_map: params0 is replicated)
    (params, _), curve = lax.scan(body, (params, tx.init(params)), jnp.arange(steps))
    accuracy = jnp.mean(jnp.argmax(model.apply(params, dataset.x_test), -1) == dataset.y_test)
    return lax.all_gather(accuracy, 'workers'), curve

  def worker(params0, tables, counts, betas, index):
    return jax.vmap(one_configuration, in_axes=(None, 0, 0, 0, 0))(params0, tables, counts, betas, index)

  return axis.run(worker, n, backend=config.backend, in_axes=(None, 0, 0, None, None))


def run(config, workdir: str) -> list[dict]:
  """Runs the whole grid; writes config.json, metrics.jsonl (one line per run), results.json, table.txt and
  heatmap.png."""
  writer = results_lib.Writer(workdir, config)
  ds = data_lib.load_images(config.data_dir, config.seed)
  model = models.MLP(hidden=(config.hidden,), num_classes=ds.num_classes)
  params0 = model.init(jax.random.key(config.seed), ds.x_train[:1])
  n = config.num_workers
  if jax.process_count() > 1 and config.backend == 'vmap':
    raise ValueError('experiments.robust: several processes need --config.backend=shard_map (or pmap)')
  alphas = [float(a) for a in _split(config.alphas)]
  results, jobs = [], []
  attacks = _split(config.attacks)
  for row in rows(config):
    for f in [int(v) for v in _split(config.faults)]:
      groups = [('none',)] if f == 0 else [g for g in (tuple(a for a in attacks if a not in OPTIMAL_ATTACKS),
                                                       tuple(a for a in attacks if a in OPTIMAL_ATTACKS)) if g]
      jobs += [(row, f, names) for names in groups]
  progress = progress_lib.Progress(len(jobs), 'robust grid', every=1, unit='group')
  for k, (row, f, names) in enumerate(jobs, 1):
    group = _run_group(model, ds, params0, row, f, n, names, alphas, config)
    writer.metrics(group)
    results += group
    progress(k, rule=row.rule, f=f, attacks=','.join(names), worst_test_acc=min(r['test_accuracy'] for r in group))
  worst = worst_case(results)
  writer.results({'runs': results, 'worst_case': [{'rule': r, 'f': f, 'alpha': a, 'test_accuracy': acc,
                                                   'attack': att} for (r, f, a), (acc, att) in worst.items()]})
  writer.text(table(results))
  writer.figure(heatmap(results), 'heatmap.png')
  return results


def _run_group(model, ds, params0, row, f, n, names, alphas, config):
  configs = [(a, b, k) for a in alphas for b in row.betas for k in range(len(names))]
  shard = {a: shards(ds.y_train, n, f, a, config.seed) for a in alphas}
  width = max(s.table.shape[1] for s in shard.values())
  padded = {a: np.stack([np.resize(r[:c], width) for r, c in zip(s.table, s.count)]) for a, s in shard.items()}
  tables = np.stack([padded[a] for a, _, _ in configs], axis=1)   # (workers, configurations, width)
  counts = np.stack([shard[a].count for a, _, _ in configs], axis=1)
  betas = jnp.asarray([b for _, b, _ in configs], jnp.float32)
  index = jnp.asarray([k for _, _, k in configs], jnp.int32)
  runner = make_group_runner(model, ds, rule_name=row.rule, f=f, n=n, attack_names=list(names) if f else [],
                             config=config)
  t0 = time.perf_counter()
  local = decentral.processes.local_rows(n)  # this process's workers (all of them in one process)
  accuracies, curves = runner(params0, tables[local], counts[local], betas, index)
  accuracies, curves = np.asarray(accuracies[0]), np.asarray(curves[0])  # every worker holds the gathered rows
  seconds = time.perf_counter() - t0
  out = []
  for c, (alpha, beta, k) in enumerate(configs):
    acc, curve = accuracies[c, :n - f], curves[c]
    out.append({'rule': row.label(beta), 'algorithm': row.rule, 'beta': beta, 'f': f, 'alpha': alpha,
                'attack': names[k], 'test_accuracy': float(np.nan_to_num(acc.mean())),
                'test_accuracy_min': float(np.nan_to_num(acc.min())),
                'final_loss': float(np.mean(curve[-10:])), 'loss_curve': curve[::max(1, len(curve) // 20)].tolist(),
                'steps': config.steps, 'n': n, 'group_seconds': seconds, 'group_size': len(configs)})
  return out


def worst_case(results: list[dict]) -> dict:
  """{(rule, f, alpha): (worst test accuracy over attacks, the attack reaching it)}."""
  worst = {}
  for r in results:
    key = (r['rule'], r['f'], r['alpha'])
    if key not in worst or r['test_accuracy'] < worst[key][0]:
      worst[key] = (r['test_accuracy'], r['attack'])
  return worst


def table(results: list[dict]) -> str:
  worst = worst_case(results)
  rules = list(dict.fromkeys(r['rule'] for r in results))
  cols = sorted({(f, a) for _, f, a in worst}, key=lambda c: (c[0], -c[1]))
  head = f'{"rule":>22s} ' + ' '.join(f'{f"f={f} a={a:g}":>16s}' for f, a in cols)
  lines = ['worst-case test accuracy over attacks (attack reaching it)', head, '-' * len(head)]
  for rule in rules:
    cells = []
    for c in cols:
      if (rule, *c) in worst:
        acc, att = worst[(rule, *c)]
        cells.append(f'{acc:6.3f} {_short(att):>9s}')
      else:
        cells.append(f'{"-":>16s}')
    lines.append(f'{rule:>22s} ' + ' '.join(cells))
  legend = attack_legend(r['attack'] for r in results)
  return '\n'.join(lines + ([f'attacks: {legend}'] if legend else []))


# The table's and the heatmap's short attack names, each with its spelling (the caption under both).
_ATTACKS = {
    'sign_flipping': ('SF', 'sign flipping'),
    'inner_product_manipulation': ('IPM', 'inner-product manipulation'),
    'a_little_is_enough': ('ALIE', 'a little is enough'),
    'fall_of_empires': ('FOE', 'fall of empires'),
    'mimic': ('mimic', 'mimic an honest worker'),
    'gaussian': ('gauss', 'Gaussian noise'),
    'not_a_number': ('NaN', 'not-a-number vectors'),
    'label_flipping': ('LF', 'label flipping'),
    'optimal_alie': ('opt-ALIE', 'ALIE with a line-searched scale (ByzFL)'),
    'optimal_ipm': ('opt-IPM', 'IPM with a line-searched scale (ByzFL)'),
    'none': ('none', 'no attack'),
}
_RULES = {'mean': 'mean', 'median': 'coordinate-wise median', 'trimmed_mean': 'coordinate-wise trimmed mean',
          'krum': 'Krum', 'geometric_median': 'geometric median',
          'nnm+trimmed_mean': 'nearest-neighbour mixing + trimmed mean'}


def _short(name):
  return _ATTACKS.get(name, (name, name))[0]


def attack_legend(attacks) -> str:
  """``SF = sign flipping, ALIE = a little is enough, ...`` for the abbreviated ``attacks``, in their order."""
  spelt = [_ATTACKS[a] for a in dict.fromkeys(attacks) if a in _ATTACKS and _ATTACKS[a][0] != a]
  return ', '.join(f'{short} = {long}' for short, long in spelt)


def rule_label(rule: str) -> str:
  """A table rule spelt out: ``monna(beta=0.9)`` -> ``MoNNA (momentum + nearest-neighbour averaging), β = 0.9``."""
  if rule.startswith('monna(beta='):
    return f'MoNNA (momentum + nearest-neighbour averaging), β = {rule[len("monna(beta="):-1]}'
  return _RULES.get(rule, rule)


def heatmap(results: list[dict]):
  """Worst-case test accuracy over attacks per rule (rows) and (f, alpha) (columns), each cell naming the attack
  that reached it; the caption spells the attacks out."""
  import matplotlib.pyplot as plt
  worst = worst_case(results)
  rules = list(dict.fromkeys(r['rule'] for r in results))
  cols = sorted({(f, a) for _, f, a in worst}, key=lambda c: (c[0], -c[1]))
  grid = np.array([[worst.get((r, *c), (np.nan,))[0] for c in cols] for r in rules])
  fig, ax = plt.subplots(figsize=(1.4 * len(cols) + 5, 0.55 * len(rules) + 2.3))
  im = ax.imshow(grid, vmin=0, vmax=1, cmap='viridis', aspect='auto')
  ax.set_xticks(range(len(cols)), [f'f = {f}\nα = {a:g}' for f, a in cols])
  ax.set_yticks(range(len(rules)), [rule_label(r) for r in rules])
  ax.set_xlabel('faulty workers f, Dirichlet label skew α (smaller α: more skewed)')
  for i, rule in enumerate(rules):
    for j, c in enumerate(cols):
      if np.isfinite(grid[i, j]):
        ax.text(j, i, f'{grid[i, j]:.2f}\n{_short(worst[(rule, *c)][1])}', ha='center', va='center', fontsize=8,
                color='w' if grid[i, j] < 0.6 else 'k')
  bar = fig.colorbar(im, ax=ax, ticks=np.linspace(0, 1, 6))
  bar.set_label('worst-case test accuracy over attacks')
  ax.set_title('Worst case over attacks (each cell: accuracy, the attack reaching it)')
  legend = attack_legend(r['attack'] for r in results)
  if legend:
    fig.text(0.01, 0.01, f'Attacks: {legend}.', fontsize=8, wrap=True, va='bottom')
  fig.tight_layout(rect=(0, 0.08, 1, 1))
  return fig
