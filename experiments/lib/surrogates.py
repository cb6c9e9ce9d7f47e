"""Target-based surrogates (SSO, Lavington et al., arXiv 2302.02607), small: expensive loss gradients needed to reach
a loss, SSO with m cheap inner steps against SGD (library code of experiments/surrogates.py).

The setting of the paper: ``L(w) = l(f(w))`` where the gradient of ``l`` with respect to the model's outputs ``f``
(the logits) is the expensive oracle, and the model is cheap. Both methods see the same minibatches and are
charged one oracle call per outer step: SGD uses it for one step on ``w``; SSO (``optim.sso``) builds its
surrogate from it and takes ``m`` cheap steps on it with an Armijo line search (the authors' inner optimizer; its
trial points are model forward passes, never oracle calls). Each method's step size is the best of a grid by the
lowest full training loss it reaches. Reported: the full training loss after each oracle call, and the number of
calls each method needs to reach the lowest loss SGD reaches within the budget.

``run`` writes ``config.json``, ``metrics.jsonl`` (the curves), ``results.json`` and ``surrogates.png``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

import optim
from experiments.lib.common import claims, data, models
from experiments.lib.common import results as results_lib


def _armijo(max_backtracking_steps, armijo_c, armijo_beta, armijo_expand, armijo_max_step):
  """SGD with an Armijo backtracking line search (the authors' inner ``LSOpt``), from optax."""
  return optax.chain(optax.sgd(1.0), optax.scale_by_backtracking_linesearch(
      max_backtracking_steps=max_backtracking_steps, slope_rtol=armijo_c, decrease_factor=armijo_beta,
      increase_factor=armijo_expand, max_learning_rate=armijo_max_step))


@functools.cache
def _steps(model, inner_steps: int | None, armijo: tuple):
  """Jitted outer steps ``(params, step_size, x, y) -> params``: SGD (``inner_steps`` None) or SSO."""
  ce = lambda f, y: models.cross_entropy(f, y)

  if inner_steps is None:
    @jax.jit
    def sgd(params, lr, x, y):
      g = jax.grad(lambda p: ce(model.apply(p, x), y))(params)
      return jax.tree.map(lambda p, gi: p - lr * gi, params, g)
    return sgd

  @jax.jit
  def sso(params, eta, x, y):
    tx = optim.sso(eta, inner_steps=inner_steps, inner_optimizer=_armijo(**dict(armijo)))
    u, _ = tx.update(params, tx.init(params), params, model_fn=lambda p: model.apply(p, x),
                     output_loss_fn=lambda f: ce(f, y))
    return optax.apply_updates(params, u)
  return sso


def _armijo_key(cfg) -> tuple:
  return tuple((k, cfg[k]) for k in ('max_backtracking_steps', 'armijo_c', 'armijo_beta', 'armijo_expand',
                                     'armijo_max_step'))


def _problem(cfg):
  ds = data.load_images(cfg.data_dir or None, cfg.seed)
  flat = lambda a: a.reshape(len(a), -1)
  x, y = jnp.asarray(flat(ds.x_train)[:cfg.train_examples]), jnp.asarray(ds.y_train[:cfg.train_examples])
  model = models.MLP(hidden=tuple(cfg.hidden), num_classes=ds.num_classes)
  params = model.init(jax.random.key(cfg.seed), x[:1])
  return model, params, x, y


def curve(cfg, model, params, x, y, inner_steps, step_size) -> list[float]:
  """Full training loss after each of ``cfg.oracle_calls`` oracle calls (index 0: before any)."""
  step = _steps(model, inner_steps, _armijo_key(cfg))
  loss = jax.jit(lambda p: models.cross_entropy(model.apply(p, x), y))
  out = [float(loss(params))]
  for t in range(cfg.oracle_calls):
    idx = data.batch_indices(len(x), cfg.batch_size, t, cfg.seed)
    params = step(params, step_size, x[idx], y[idx])
    out.append(float(loss(params)))
  return out


def calls_to_reach(losses: list[float], target: float) -> int | None:
  """The first oracle-call count after which the loss is at most ``target`` (None: never)."""
  hits = [t for t, v in enumerate(losses) if v <= target]
  return hits[0] if hits else None


def run(cfg, workdir: str) -> dict:
  writer = results_lib.Writer(workdir, cfg)
  model, params, x, y = _problem(cfg)
  methods = {'sgd': (None, list(cfg.sgd_steps))}
  # the target step eta scales with the batch: the mean loss's gradient per example is 1 / batch_size of its own
  methods.update({f'sso_m{m}': (m, [cfg.batch_size * s for s in cfg.sso_target_steps]) for m in cfg.inner_steps})
  best = {}
  for name, (m, grid) in methods.items():
    tried = {}
    for s in grid:
      losses = curve(cfg, model, params, x, y, m, s)
      tried[s] = losses
      print(f'{name:8s} step {s:9.4g}: loss {losses[-1]:.4f} after {cfg.oracle_calls} oracle calls', flush=True)
    finite = {s: v for s, v in tried.items() if np.isfinite(v[-1])}
    s_best = min(finite, key=lambda s: min(finite[s]))
    best[name] = {'inner_steps': m or 0, 'step_size': s_best, 'losses': tried[s_best],
                  'grid': {str(s): v[-1] for s, v in tried.items()}}
  target = min(best['sgd']['losses'])   # the lowest loss SGD reaches within the budget
  for name, b in best.items():
    b['calls_to_sgd_best_loss'] = calls_to_reach(b['losses'], target)
  writer.metrics([{'method': name, 'oracle_calls': t, 'loss': v} for name, b in best.items()
                  for t, v in enumerate(b['losses'])])
  outputs = {'best': best, 'target_loss': target, 'oracle_calls': cfg.oracle_calls}
  writer.results(outputs)
  writer.figure(_plot(best), 'surrogates.png')
  return outputs


def _plot(best):
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(5, 3.5))
  for name, b in best.items():
    ax.plot(b['losses'], label=f"{name} (step {b['step_size']:.3g})")
  ax.set_yscale('log')
  ax.set_xlabel('expensive oracle calls (gradients of the loss w.r.t. the logits)')
  ax.set_ylabel('full training loss')
  ax.legend()
  return fig


def table(outputs: dict) -> str:
  lines = [f"{'method':8s} {'m':>3s} {'step':>9s} {'final loss':>10s} {'calls to SGD best':>18s}"]
  for name, b in outputs['best'].items():
    calls = b['calls_to_sgd_best_loss']
    lines.append(f"{name:8s} {b['inner_steps']:3d} {b['step_size']:9.4g} {b['losses'][-1]:10.4f} "
                 f"{'-' if calls is None else calls:>18}")
  return '\n'.join(lines)


def _measure(outputs: dict) -> dict:
  out = {'oracle_calls': outputs['oracle_calls'], 'sgd_best_loss': outputs['target_loss']}
  for name, b in outputs['best'].items():
    out[f'{name}_final_loss'] = b['losses'][-1]
    out[f'{name}_calls'] = b['calls_to_sgd_best_loss']
  return out


def _assess(m) -> claims.Assessment:
  sso = sorted((int(k[len('sso_m'):-len('_calls')]), v) for k, v in m.items()
               if k.startswith('sso_m') and k.endswith('_calls'))
  sgd = m['sgd_calls']
  calls = ', '.join(f"m={k}: {'not reached' if v is None else v}" for k, v in sso)
  ours = f"oracle calls to SGD's best loss ({m['sgd_best_loss']:.3f}, SGD: {sgd} calls): {calls}"
  fewer = [v for k, v in sso if k > 1 and v is not None and v < sgd]
  if fewer and min(fewer) <= sgd / 2:
    return claims.Assessment(ours, 'agree', 'with m > 1 cheap steps SSO needs at most half of SGD\'s expensive calls')
  if fewer:
    return claims.Assessment(ours, 'partly', 'SSO with m > 1 needs fewer expensive calls than SGD, but not half')
  return claims.Assessment(ours, 'disagree', 'SSO does not reach SGD\'s loss with fewer expensive calls')


CLAIMS = (
    claims.Claim(
        id='sso_oracle_calls', experiment='surrogates', title='SSO: fewer expensive gradients than SGD',
        paper='Lavington et al. 2023', arxiv='2302.02607',
        claim='SSO with m > 1 cheap inner steps on the target-space surrogate needs fewer expensive gradient calls '
              'than SGD to reach the same loss (each with its best step size)',
        paper_number='qualitative (LIBSVM, MNIST, imitation learning figures): SSO with m > 1 below SGD at equal '
                     'oracle calls, gains growing with m then saturating',
        measure=_measure, assess=_assess),
)
