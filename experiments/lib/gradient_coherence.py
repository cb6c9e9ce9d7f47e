"""Coherence of per-example gradients (Chatterjee & Zielinski, 2203.10036; m-coherence from 2008.01217) and its
suppression by winsorised gradients (2002.10657), exact in float64 (library code of
experiments/gradient_coherence.py).

Part 1: plain SGD on digits (and MNIST when ``data_dir`` is set) with real and random labels; the m-coherence of a
fixed training sample of ``coherence_size`` examples, logged through training. Part 2: digits with a fraction of
labels redrawn; plain SGD against winsorised SGD (and winsorised SGD at a larger learning rate, a control for its
shorter steps): memorisation (training accuracy on the wrong labels) against test accuracy. ``run`` writes
``config.json``, ``results.json``, ``metrics.jsonl`` and ``coherence_<data>.png``, ``suppression.png``.
"""

from __future__ import annotations

import numpy as np

from experiments.lib.common import claims
from experiments.lib.common import data as data_lib
from experiments.lib.common import results as results_lib
from theory import coherence

table = results_lib.headline_table


def _real_vs_random(headline: list[dict]) -> dict:
  return {r['data']: {'real': r['early_m_coherence'][0], 'random': r['early_m_coherence'][-1],
                      'm': r['coherence_size'], 'steps': r['early_steps']}
          for r in headline if r['part'] == 'coherence'}


def _assess_real_vs_random(m) -> claims.Assessment:
  ratios = {k: v['real'] / v['random'] for k, v in m.items()}
  ours = '; '.join(f"{k}: m-coherence (m = {v['m']}, mean over steps 1-{v['steps']}) {v['real']:.1f} real vs "
                   f"{v['random']:.1f} random labels ({ratios[k]:.1f}x)" for k, v in m.items())
  if all(r >= 5 for r in ratios.values()):
    return claims.Assessment(ours, 'agree', 'coherence is several times higher with real labels on every data set')
  if all(r > 1.5 for r in ratios.values()):
    return claims.Assessment(ours, 'partly', 'higher with real labels everywhere, by less than 5x somewhere')
  return claims.Assessment(ours, 'disagree', 'real and random labels give similar coherence')


def _suppression(headline: list[dict]) -> dict:
  r = next(r for r in headline if r['part'] == 'suppression')
  return {'fraction': r['fraction'], 'runs': r['final'], 'num_train': r['num_train'], 'steps': r['steps'],
          'batch_size': r['batch_size']}


def _assess_suppression(m) -> claims.Assessment:
  runs = m['runs']
  plain, wins = runs['sgd'], next(v for k, v in runs.items() if k.startswith('winsorized') and 'lr' not in k)
  ours = '; '.join(f"{k}: wrong-label train acc {v['train_corrupted_acc']:.2f}, test acc {v['test_acc']:.2f}"
                   for k, v in runs.items()) + (f" ({m['fraction']:.0%} of {m['num_train']} digits labels redrawn, "
                                                f"{m['steps']} steps of batch {m['batch_size']})")
  drop = plain['train_corrupted_acc'] - wins['train_corrupted_acc']
  keeps = wins['test_acc'] >= plain['test_acc'] - 0.02
  if drop >= 0.2 and keeps:
    return claims.Assessment(ours, 'agree', 'winsorising cuts memorisation of the wrong labels and keeps (or raises) '
                             'test accuracy')
  if drop > 0.05:
    return claims.Assessment(ours, 'partly', 'winsorising lowers memorisation, but by less than 0.2 or at a cost in '
                             'test accuracy')
  return claims.Assessment(ours, 'disagree', 'winsorising does not lower memorisation of the wrong labels')


CLAIMS = (
    claims.Claim(
        id='coherence_real_vs_random', experiment='gradient_coherence', title='Gradient coherence, real vs random',
        paper='Chatterjee & Zielinski 2022', arxiv='2203.10036',
        claim='the coherence of per-example gradients takes very different values on real and on random labels '
              '(random-label m-coherence stays above 1 but much smaller)',
        paper_number='qualitative ("very different values" for common vision networks; m-coherence in the 100s with '
                     'random ImageNet labels, much smaller than with real ones, 2008.01217)',
        measure=_real_vs_random, assess=_assess_real_vs_random,
        overrides={'data_dir': '../shared/data/mnist'}),
    claims.Claim(
        id='coherence_suppression', experiment='gradient_coherence', title='Winsorised gradients vs memorisation',
        paper='Chatterjee & Zielinski 2022 (Coherent Gradients)', arxiv='2203.10036',
        claim='robust averaging of per-example gradients (winsorising) attenuates memorisation of noisy labels and '
              'keeps (or improves) generalisation',
        paper_number='qualitative (MNIST, 2002.10657: larger winsorisation holds training accuracy on noisy labels far '
                     'lower at about the same test accuracy)',
        measure=_suppression, assess=_assess_suppression,
        overrides={'data_dir': '../shared/data/mnist'}),
)


def _data(cfg):
  """[(name, x, y, x_test, y_test)]: digits, and MNIST (first max_points training images) when data_dir is set."""
  sets = [('digits', *coherence.digits(seed=cfg.seed))]
  if cfg.data_dir:
    ds = data_lib.load_mnist(cfg.data_dir, seed=cfg.seed)
    flat = lambda a: a.reshape(len(a), -1).astype(np.float64)
    sets.append(('mnist', flat(ds.x_train[:cfg.max_points]), ds.y_train[:cfg.max_points],
                 flat(ds.x_test[:cfg.max_points // 2]), ds.y_test[:cfg.max_points // 2]))
  return [(name, x[:cfg.max_points], y[:cfg.max_points], xt, yt) for name, x, y, xt, yt in sets]


def _final(r: dict) -> dict:
  return {k: float(r[k][-1]) for k in ('train_clean_acc', 'train_corrupted_acc', 'test_acc', 'm_coherence', 'loss')}


def run(cfg, workdir: str) -> list[dict]:
  """Runs both parts, writes JSON and figures, returns the headline records."""
  writer = results_lib.Writer(workdir, cfg)
  train_kw = dict(hidden=tuple(cfg.hidden), steps=cfg.steps, batch_size=cfg.batch_size,
                  learning_rate=cfg.learning_rate, eval_every=cfg.eval_every, coherence_size=cfg.coherence_size)
  headline, results = [], {}
  for name, x, y, xt, yt in _data(cfg):
    out = coherence.coherence_vs_label_noise(x, y, xt, yt, tuple(cfg.fractions), seed=cfg.seed, **train_kw)
    writer.figure(coherence.plot_coherence(out), f'coherence_{name}.png')
    results[f'coherence_{name}'] = out
    early = [float(np.mean(r['m_coherence'][(r['steps'] > 0) & (r['steps'] <= cfg.early_steps)])) for r in out['runs']]
    headline.append({'part': 'coherence', 'data': name, 'num_train': len(x), 'fractions': out['fractions'],
                     'coherence_size': out['runs'][0]['coherence_size'], 'early_steps': cfg.early_steps,
                     'initial_m_coherence': [float(r['m_coherence'][0]) for r in out['runs']],
                     'early_m_coherence': early, 'final': [_final(r) for r in out['runs']]})
  name, x, y, xt, yt = _data(cfg)[0]
  x, y = x[:cfg.suppress_points], y[:cfg.suppress_points]
  variants = {'sgd': {}, f'winsorized c={cfg.winsor_c}': {'aggregator': 'winsorized', 'c': cfg.winsor_c},
              f'winsorized c={cfg.winsor_c}, lr {cfg.control_lr:g}': {'aggregator': 'winsorized', 'c': cfg.winsor_c,
                                                                      'learning_rate': cfg.control_lr}}
  sup = coherence.suppression(x, y, xt, yt, cfg.noise_fraction, variants, seed=cfg.seed,
                              hidden=tuple(cfg.suppress_hidden), steps=cfg.suppress_steps, batch_size=cfg.batch_size,
                              learning_rate=cfg.suppress_lr, eval_every=cfg.suppress_eval_every,
                              coherence_size=cfg.coherence_size)
  writer.figure(coherence.plot_suppression(sup), 'suppression.png')
  results['suppression'] = sup
  headline.append({'part': 'suppression', 'data': name, 'num_train': len(x), 'fraction': cfg.noise_fraction,
                   'batch_size': cfg.batch_size, 'winsor_c': cfg.winsor_c, 'steps': cfg.suppress_steps,
                   'final': {k: _final(r) for k, r in sup['runs'].items()}})
  writer.results(results)
  writer.metrics(headline)
  return headline
