"""Sharpness for free (Du et al., arXiv 2205.14083), small: plain SGD, SAF, MESA and SAM on an MLP (library code of
experiments/sharpness.py).

Every method trains the same MLP from the same initialisation on the same epoch-shuffled batches with SGD and
momentum; SAF and MESA add their trajectory loss (``optim.saf``, ``optim.mesa``), SAM is ``optax.contrib.sam``
(an ascent step ``rho g / ||g||``, then the base step with the gradient there: two gradients a step). At the end
each run is measured on the training set: the top Hessian eigenvalue of the cross-entropy (``optim.power_iteration``
on ``optim.hessian_matvec``), the SAM-style ascent sharpness ``L(w + rho g / ||g||) - L(w)``, train loss and test
accuracy; with the gradients and the wall time each step cost.

``run`` writes ``config.json``, ``metrics.jsonl`` (one row per method and seed), ``results.json`` (those rows and
the means) and ``sharpness.png``.
"""

from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import optim
from experiments.lib.common import claims, models, training
from experiments.lib.common import results as results_lib

METHODS = ('sgd', 'saf', 'mesa', 'sam')
# Model passes per step: gradients (forward + backward) and extra forward passes.
GRADIENTS = {'sgd': 1, 'saf': 1, 'mesa': 1, 'sam': 2}
EXTRA_FORWARDS = {'sgd': 0, 'saf': 0, 'mesa': 1, 'sam': 0}


def _per_example_ce(logits, y):
  return optax.softmax_cross_entropy_with_integer_labels(logits, y)


def _term(cfg, method, apply_fn, num_examples, num_classes):
  if method == 'saf':
    return optim.saf(num_examples, num_classes, weight=cfg.saf_weight, temperature=cfg.temperature,
                     memory_epochs=cfg.memory_epochs, start_epoch=cfg.start_epoch, end_epoch=cfg.end_epoch)
  if method == 'mesa':
    return optim.mesa(apply_fn, weight=cfg.mesa_weight, temperature=cfg.temperature, decay=cfg.mesa_decay,
                      start_epoch=cfg.start_epoch, end_epoch=cfg.end_epoch)
  return None


def _epoch_fn(cfg, method, model, num_examples, num_classes):
  """A jitted ``(params, opt_state, term_state, batches, epoch, x, y) -> (params, opt_state, term_state, loss)``
  (the data are arguments, so the seeds of a method share one compilation)."""
  apply = model.apply
  base = optax.sgd(cfg.learning_rate, momentum=cfg.momentum)
  ce = lambda p, x, y: models.cross_entropy(apply(p, x), y)
  term = _term(cfg, method, apply, num_examples, num_classes)
  if method == 'sam':
    tx = optax.contrib.sam(base, optax.chain(optax.contrib.normalize(), optax.sgd(cfg.sam_rho)), sync_period=2)
  else:
    tx = base
  loss_fn = optim.sharpness.trajectory.regularize(apply, _per_example_ce, term) if term else None

  def step(carry, idx, epoch, x_train, y_train):
    params, opt_state, term_state = carry
    x, y = x_train[idx], y_train[idx]
    if method == 'sam':   # transparent mode: the ascent call, then the descent call from the perturbed point
      for _ in range(2):
        loss, g = jax.value_and_grad(ce)(params, x, y)
        u, opt_state = tx.update(g, opt_state, params)
        params = optax.apply_updates(params, u)
    elif term is None:
      loss, g = jax.value_and_grad(ce)(params, x, y)
      u, opt_state = tx.update(g, opt_state, params)
      params = optax.apply_updates(params, u)
    else:
      (_, (logits, loss)), g = jax.value_and_grad(loss_fn, has_aux=True)(params, term_state, x, y, epoch=epoch,
                                                                         indices=idx)
      u, opt_state = tx.update(g, opt_state, params)
      params = optax.apply_updates(params, u)
      term_state = term.update(term_state, epoch=epoch, logits=logits, indices=idx, params=params)
    return (params, opt_state, term_state), loss

  @jax.jit
  def epoch_fn(params, opt_state, term_state, batches, epoch, x_train, y_train):
    carry, losses = jax.lax.scan(lambda c, idx: step(c, idx, epoch, x_train, y_train),
                                 (params, opt_state, term_state), batches)
    return (*carry, jnp.mean(losses))

  init_term = (lambda p: term.init(p)) if term else (lambda p: ())
  return tx, init_term, epoch_fn


def sharpness(model, params, x, y, key, *, power_iters: int, rho: float) -> dict:
  """Top Hessian eigenvalue of the mean cross-entropy on ``(x, y)`` and the ascent sharpness at radius ``rho``."""
  values = _sharpness(model, power_iters, rho)(params, x, y, key)
  return {k: float(v) for k, v in zip(('top_eigenvalue', 'ascent_sharpness', 'train_loss_eval'), values)}


@functools.cache
def _sharpness(model, power_iters, rho):
  @jax.jit
  def measure(params, x, y, key):
    loss = lambda p: models.cross_entropy(model.apply(p, x), y)
    top, _ = optim.power_iteration(optim.hessian_matvec(loss, params), params, key, 1, power_iters)
    value, g = jax.value_and_grad(loss)(params)
    norm = optax.global_norm(g)
    ascent = loss(jax.tree.map(lambda p, gi: p + rho * gi / norm, params, g)) - value
    return top[0], ascent, value
  return measure


def train(cfg, method: str, seed: int, epoch_fns: dict | None = None) -> dict:
  """One run: trains ``method`` for ``cfg.epochs`` epochs from seed ``seed``; returns its row of measurements.
  ``epoch_fns`` caches the compiled epochs by method across seeds."""
  ds, model, params = training.make_problem(cfg.data_dir or None, 'mlp', seed, hidden=tuple(cfg.hidden))
  n = len(ds.x_train)
  steps = n // cfg.batch_size
  epoch_fns = {} if epoch_fns is None else epoch_fns
  if method not in epoch_fns:
    epoch_fns[method] = _epoch_fn(cfg, method, model, n, ds.num_classes)
  tx, init_term, epoch_fn = epoch_fns[method]
  opt_state, term_state = tx.init(params), init_term(params)
  x_train, y_train = jnp.asarray(ds.x_train), jnp.asarray(ds.y_train)
  seconds, losses = 0.0, []
  for epoch in range(cfg.epochs):
    perm = np.random.default_rng([seed, epoch]).permutation(n)[:steps * cfg.batch_size]
    batches = jnp.asarray(perm.reshape(steps, cfg.batch_size))
    t0 = time.perf_counter()
    params, opt_state, term_state, loss = epoch_fn(params, opt_state, term_state, batches, epoch, x_train, y_train)
    losses.append(float(loss))
    if epoch > 0:   # the first epoch compiles
      seconds += time.perf_counter() - t0
  m = cfg.eval_examples
  measured = sharpness(model, params, x_train[:m], y_train[:m], jax.random.key(seed), power_iters=cfg.power_iters,
                       rho=cfg.sharpness_rho)
  return {'method': method, 'seed': seed, **measured, 'final_batch_loss': losses[-1],
          'test_accuracy': training.accuracy(model, params, ds.x_test, ds.y_test),
          'gradients_per_step': GRADIENTS[method], 'extra_forwards_per_step': EXTRA_FORWARDS[method],
          'ms_per_step': 1e3 * seconds / max(1, (cfg.epochs - 1) * steps)}


def _means(rows: list[dict]) -> dict:
  out = {}
  for method in dict.fromkeys(r['method'] for r in rows):
    rs = [r for r in rows if r['method'] == method]
    out[method] = {k: float(np.mean([r[k] for r in rs])) for k in ('top_eigenvalue', 'ascent_sharpness',
                                                                    'test_accuracy', 'train_loss_eval',
                                                                    'gradients_per_step', 'ms_per_step')}
    out[method]['top_eigenvalue_std'] = float(np.std([r['top_eigenvalue'] for r in rs]))
    out[method]['test_accuracy_std'] = float(np.std([r['test_accuracy'] for r in rs]))
  return out


def run(cfg, workdir: str) -> dict:
  writer = results_lib.Writer(workdir, cfg)
  rows, epoch_fns = [], {}
  for method in cfg.methods:
    if method not in METHODS:
      raise ValueError(f'methods must be among {METHODS}, got {method!r}')
    for seed in cfg.seeds:
      row = train(cfg, method, seed, epoch_fns)
      print(f"{method:5s} seed {seed}: top eigenvalue {row['top_eigenvalue']:.3f}, ascent "
            f"{row['ascent_sharpness']:.4f}, test accuracy {row['test_accuracy']:.4f}", flush=True)
      writer.metrics([row])
      rows.append(row)
  outputs = {'rows': rows, 'means': _means(rows)}
  writer.results(outputs)
  writer.figure(_plot(outputs['means']), 'sharpness.png')
  return outputs


def _plot(means: dict):
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
  names = list(means)
  for ax, key, label in zip(axes, ('top_eigenvalue', 'ascent_sharpness', 'test_accuracy'),
                            ('top Hessian eigenvalue', 'ascent sharpness', 'test accuracy')):
    ax.bar(names, [means[m][key] for m in names], color='C0')
    ax.set_title(label)
  return fig


def table(outputs: dict) -> str:
  lines = [f"{'method':8s} {'lambda_max':>10s} {'ascent':>8s} {'test acc':>9s} {'grads/step':>10s} {'ms/step':>8s}"]
  for method, m in outputs['means'].items():
    lines.append(f"{method:8s} {m['top_eigenvalue']:10.3f} {m['ascent_sharpness']:8.4f} {m['test_accuracy']:9.4f} "
                 f"{m['gradients_per_step']:10.0f} {m['ms_per_step']:8.2f}")
  return '\n'.join(lines)


def _measure(outputs: dict) -> dict:
  return {f'{method}_{k}': v for method, m in outputs['means'].items() for k, v in m.items()}


def _assess(m) -> claims.Assessment:
  rel = lambda method, key: m[f'{method}_{key}'] / m[f'sgd_{key}']
  ours = '; '.join(f"{name}: lambda_max x{rel(method, 'top_eigenvalue'):.2f}, "
                   f"ascent x{rel(method, 'ascent_sharpness'):.2f}, test acc {m[f'{method}_test_accuracy']:.3f}, "
                   f"{m[f'{method}_gradients_per_step']:.0f} grad/step"
                   for method, name in (('saf', 'SAF'), ('mesa', 'MESA'), ('sam', 'SAM')))
  ours = (f"vs plain SGD (test acc {m['sgd_test_accuracy']:.3f}): {ours}; final train loss SGD "
          f"{m['sgd_train_loss_eval']:.4f}, SAF {m['saf_train_loss_eval']:.4f}, MESA {m['mesa_train_loss_eval']:.4f}")
  flatter = {method: [rel(method, k) < 0.9 for k in ('top_eigenvalue', 'ascent_sharpness')]
             for method in ('saf', 'mesa', 'sam')}
  if all(all(v) for v in flatter.values()):
    return claims.Assessment(ours, 'agree', 'SAF and MESA flatten by both measures at one gradient a step, as SAM '
                                            'does at two')
  if any(any(flatter[k]) for k in ('saf', 'mesa')):
    both = [label for k, label in enumerate(('the top eigenvalue', 'the ascent sharpness'))
            if flatter['saf'][k] and flatter['mesa'][k]]
    if len(both) == 1:
      why = f'SAF and MESA lower {both[0]} by 10% or more at one gradient a step, not the other measure'
    else:
      why = 'only some of SAF / MESA and the two measures show a 10% lower sharpness'
    return claims.Assessment(ours, 'partly', why)
  higher = all(m[f'{k}_train_loss_eval'] > m['sgd_train_loss_eval'] for k in ('saf', 'mesa'))
  return claims.Assessment(ours, 'disagree', 'neither SAF nor MESA is 10% flatter than plain SGD by either measure' +
                           ('; both stop at a higher training loss, where the cross-entropy is more curved (sharpness '
                            'at equal loss was not compared)' if higher else ''))


CLAIMS = (
    claims.Claim(
        id='saf_sharpness', experiment='sharpness', title='SAF / MESA: sharpness at no extra gradient (digits)',
        paper='Du et al. 2022', arxiv='2205.14083',
        claim='the trajectory loss (SAF) and the EMA-teacher loss (MESA) reach flatter minima than the base '
              'optimizer at its cost per step, as SAM does at twice the gradients',
        paper_number='ImageNet: SAF/MESA reach SAM-like sharpness and accuracy at ~the base optimizer\'s throughput '
                     '(~2x SAM\'s); digits MLP here, 5 seeds',
        measure=_measure, assess=_assess),
    claims.Claim(
        id='saf_sharpness_mnist', experiment='sharpness', title='SAF / MESA: sharpness at no extra gradient (MNIST)',
        paper='Du et al. 2022', arxiv='2205.14083',
        claim='the same, on MNIST (the 10,000 shared images)',
        paper_number='as above; MNIST MLP here, 3 seeds, 30 epochs',
        measure=_measure, assess=_assess, preset='mnist'),
)
