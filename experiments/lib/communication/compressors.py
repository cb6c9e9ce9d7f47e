"""Every compressor on a real gradient: exact bytes, compression ratio, relative error; RQM's privacy.

The gradient is that of an MLP on a batch of digits (or MNIST with ``--config.data_dir``) after ``warm_steps``
SGD steps. Each compressor is applied leaf by leaf; its bytes are ``len(encode(payload))`` (the real wire bytes,
equal to ``nbytes`` except for FedZip, whose entropy coding is data dependent), its error
|C(g) - g|^2 / |g|^2 averaged over ``draws`` keys. For RQM (entries clipped to [-c, c], c = ``rqm_clip``) the
table adds the Renyi-DP epsilon of one release of the whole gradient at delta = ``target_delta``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from decentral import compression as comp
from decentral import ledger, privacy, registry
from experiments.lib.common import data as data_lib
from experiments.lib.common import models, training

CLAIMS = ()  # a measurement of every codec, not a paper's claim


def _parse(spec):
  name, *kvs = spec.split()
  kwargs = {}
  for kv in kvs:
    k, v = kv.split('=')
    kwargs[k] = v if not v.replace('.', '', 1).replace('e-', '', 1).isdigit() else (
        int(v) if v.isdigit() else float(v))
  return name, kwargs


def gradient(config):
  ds = data_lib.load_images(config.data_dir, config.seed)
  model = models.MLP(hidden=(config.hidden,), num_classes=ds.num_classes)
  params = model.init(jax.random.key(config.seed), ds.x_train[:1])
  grad = jax.jit(jax.grad(lambda p, x, y: models.cross_entropy(model.apply(p, x), y)))
  opt = optax.sgd(0.1, momentum=0.9)
  state = opt.init(params)
  for t in range(config.warm_steps + 1):
    x, y = training.batch(ds, config.batch_size, t, config.seed)
    g = grad(params, x, y)
    u, state = opt.update(g, state)
    params = optax.apply_updates(params, u)
  return g


def run(config, writer) -> list[dict]:
  """Every compressor of ``config.specs``; writes metrics.jsonl, results.json, table.txt and ratio_vs_error.png."""
  g = gradient(config)
  dense = ledger.dense_nbytes(g)
  norm2 = float(sum(jnp.sum(x ** 2) for x in jax.tree.leaves(g)))
  d = sum(x.size for x in jax.tree.leaves(g))
  rows = []
  for spec in [s.strip() for s in config.specs.split(';') if s.strip()]:
    name, kwargs = _parse(spec)
    c = registry.compressors.build(name, **kwargs)
    errs, sizes = [], []
    compress = jax.jit(lambda g, key, c=c: comp.compress_tree(c, g, key))
    error = jax.jit(lambda p, g, c=c: sum(jnp.sum((a - b) ** 2) for a, b in zip(
        jax.tree.leaves(comp.decompress_tree(c, p, g)), jax.tree.leaves(g))))
    for r in range(config.draws):
      payloads = compress(g, jax.random.fold_in(jax.random.key(config.seed), r))
      sizes.append(len(comp.encode_tree(c, payloads, g)))
      errs.append(float(error(payloads, g)))
    row = {'compressor': spec, 'bytes': int(np.mean(sizes)), 'nbytes_static': comp.tree_nbytes(c, g),
           'ratio': dense / np.mean(sizes), 'relative_error': float(np.mean(errs)) / norm2,
           'unbiased': c.unbiased}
    if name == 'rqm':
      eps, order = privacy.epsilon(config.target_delta, c=kwargs['c'], delta=kwargs['delta'], m=kwargs['m'],
                                   q=kwargs['q'], dims=d)
      row['epsilon'], row['order'] = eps, order
    rows.append(row)
  writer.metrics([{'experiment': 'compressors', **r} for r in rows])
  writer.results({'rows': rows, 'dense_bytes': dense, 'params': d})
  writer.text(table(rows))
  writer.figure(plot(rows), 'ratio_vs_error.png')
  return rows


def table(rows: list[dict]) -> str:
  lines = [f'{"compressor":<48} {"bytes":>9} {"ratio":>8} {"rel. err":>9} {"unbiased":>9}']
  for r in rows:
    extra = f'  RDP->(eps={r["epsilon"]:.3g}, delta) at order {r["order"]:g}' if 'epsilon' in r else ''
    lines.append(f'{r["compressor"]:<48} {r["bytes"]:>9d} {r["ratio"]:>7.1f}x {r["relative_error"]:>9.3g} '
                 f'{str(r["unbiased"]):>9}{extra}')
  return '\n'.join(lines)


def plot(rows: list[dict]):
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(6.5, 4.5))
  for r in rows:
    ax.scatter(r['ratio'], max(r['relative_error'], 1e-6), marker='o' if r['unbiased'] else 's')
    ax.annotate(r['compressor'].split(' encoding=')[-1] if 'fedzip' in r['compressor'] else r['compressor'].split()[0],
                (r['ratio'], max(r['relative_error'], 1e-6)), fontsize=6)
  ax.set(xscale='log', yscale='log', xlabel='compression ratio (dense bytes / wire bytes)',
         ylabel=r'$\|C(g) - g\|^2 / \|g\|^2$', title='compressors on one gradient (o unbiased, s biased)')
  return fig
