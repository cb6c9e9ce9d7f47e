"""Directional sharpness of update directions along training (Pan & Li, 2306.00204), in float64 (library code of
experiments/directional_sharpness.py).

SGD with momentum, Adam and clipped SGD (``optim.coordinate_clip_sgd``) train the same character transformer from
the same start on the same batches; every ``probe_every`` steps each one's update, its coordinate-clipped update,
the mini-batch gradient (plain SGD's direction at that point) and the clipped gradient are probed: the directional
sharpness ``v^T H v / ||v||^2`` on a fixed evaluation batch (``optim.hvp``) and the gradient correlation.
``run`` writes ``config.json``, ``results.json``, ``metrics.jsonl``, ``sharpness.png`` and ``losses.png``.
"""

from __future__ import annotations

import jax
import numpy as np
import optax

from experiments.lib.common import claims
from experiments.lib.common import data as data_lib
from experiments.lib.common import models
from experiments.lib.common import results as results_lib
import optim
from theory import directional_sharpness as ds

table = results_lib.headline_table


def _adam_vs_sgd(headline: list[dict]) -> dict:
  r = headline[0]
  return {k: r[k] for k in ('gradient_over_adam', 'gradient_over_clipped_gradient', 'sgd_over_clipped_sgd',
                            'final_loss', 'clip_fraction', 'probes')}


def _assess_adam_vs_sgd(m) -> claims.Assessment:
  ratio, clip_ratio = m['gradient_over_adam'], m['gradient_over_clipped_gradient']
  losses = ', '.join(f'{k} {v:.2f}' for k, v in m['final_loss'].items())
  ours = (f"median over {m['probes']} probes on Adam's trajectory: sharpness of the gradient (SGD's direction) / "
          f"Adam's update = {ratio:.1f}x; gradient / clipped gradient (top {m['clip_fraction']:.0%}) = "
          f"{clip_ratio:.2f}x along SGD's; final losses {losses}")
  if ratio >= 3 and clip_ratio > 1.2:
    return claims.Assessment(ours, 'agree', "SGD's direction is several times sharper than Adam's, and clipping a "
                             'few coordinates lowers its sharpness')
  if ratio > 1.5 or clip_ratio > 1.1:
    return claims.Assessment(ours, 'partly', 'the ordering holds, by less than the 3x and 1.2x taken here as '
                             '"much sharper" and "reduces"')
  return claims.Assessment(ours, 'disagree', 'no sharpness gap between SGD and Adam directions')


CLAIMS = (
    claims.Claim(
        id='directional_sharpness_adam_vs_sgd', experiment='directional_sharpness',
        title='Directional sharpness: SGD vs Adam', paper='Pan & Li 2023', arxiv='2306.00204',
        claim="SGD's update directions have much larger directional sharpness than Adam's on transformers, and "
              'coordinate-wise clipping reduces it',
        paper_number='qualitative (transformers on translation and language modelling; the sharpness ratios were not '
                     'retrieved)',
        measure=_adam_vs_sgd, assess=_assess_adam_vs_sgd,
        overrides={'data_dir': '../shared/data/tinyshakespeare'}),
)


def make_problem(cfg):
  """(loss_fn, params, batch_fn, eval_batch): the character transformer of the config and its data."""
  corpus = data_lib.load_text(cfg.data_dir)
  model = models.CharTransformer(vocab_size=len(corpus.vocab), d_model=cfg.d_model, layers=cfg.layers,
                                 heads=cfg.heads, block=cfg.block)
  x0, _ = data_lib.char_batch(corpus.train, 1, cfg.block, 0, cfg.seed)
  params = model.init(jax.random.key(cfg.seed), x0)
  loss_fn = lambda p, batch: models.cross_entropy(model.apply(p, batch[0]), batch[1])
  batch_fn = lambda t: data_lib.char_batch(corpus.train, cfg.batch_size, cfg.block, t, cfg.seed)
  eval_batch = data_lib.char_batch(corpus.train, cfg.eval_batch_size, cfg.block, 10 ** 6, cfg.seed)
  return loss_fn, params, batch_fn, eval_batch


def run(cfg, workdir: str) -> list[dict]:
  """Trains and probes every optimizer, writes JSON and figures, returns the headline record."""
  writer = results_lib.Writer(workdir, cfg)
  loss_fn, params, batch_fn, eval_batch = make_problem(cfg)
  known = {'sgd': lambda: optax.sgd(cfg.sgd_lr, momentum=cfg.momentum), 'adam': lambda: optax.adam(cfg.adam_lr),
           'clipped_sgd': lambda: optim.coordinate_clip_sgd(cfg.sgd_lr, fraction=cfg.clip_fraction,
                                                            momentum=cfg.momentum)}
  names = [n.strip() for n in cfg.optimizers.split(',') if n.strip()]
  if not {'sgd', 'adam'} <= set(names) <= set(known):
    raise ValueError(f'directional_sharpness: optimizers must include sgd and adam, from {sorted(known)}; got {names}')
  optimizers = {n: known[n]() for n in names}
  out = ds.sharpness_along_training(loss_fn, params, optimizers, batch_fn, eval_batch, steps=cfg.steps,
                                    every=cfg.probe_every, clip_fraction=cfg.clip_fraction)
  writer.figure(ds.plot_sharpness(out), 'sharpness.png')
  writer.figure(ds.plot_losses(out), 'losses.png')
  later = lambda r: r['steps'] > 0  # step 0 is the same point and (up to scale) the same direction for all
  adam, sgd = out['adam'], out['sgd']
  median = lambda a: float(np.median(a))
  headline = [{
      'num_params': int(sum(np.size(p) for p in jax.tree.leaves(params))), 'steps': cfg.steps,
      'probes': int(later(adam).sum()), 'clip_fraction': cfg.clip_fraction,
      'gradient_over_adam': median(adam['sharpness_gradient'][later(adam)] / adam['sharpness_update'][later(adam)]),
      'gradient_over_clipped_gradient': median(sgd['sharpness_gradient'][later(sgd)]
                                               / sgd['sharpness_clipped_gradient'][later(sgd)]),
      'sgd_over_clipped_sgd': median(sgd['sharpness_update'][later(sgd)] / sgd['sharpness_clipped_update'][later(sgd)]),
      'median_sharpness': {name: {d: median(r[f'sharpness_{d}'][later(r)]) for d in
                                  ('update', 'clipped_update', 'gradient', 'clipped_gradient')}
                           for name, r in out.items()},
      'final_loss': {name: float(np.mean(r['train_loss'][-20:])) for name, r in out.items()},
  }]
  writer.results(out)
  writer.metrics(headline)
  return headline
