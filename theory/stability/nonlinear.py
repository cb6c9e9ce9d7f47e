"""The nonlinear experiment: sharpness, exact threshold and norms of the minima GD and SGD reach, with ``optim``'s
Lanczos and Hutchinson estimates checked against the dense Hessian."""

from __future__ import annotations

import functools
from typing import Any, Sequence

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
import numpy as np

import optim
from theory.numerics import PyTree, float64, tree_float64
from theory.stability.models import MODELS, relu_net, square_loss
from theory.stability.threshold import stability_threshold
from theory.stability.training import train_to_interpolation


@functools.partial(jax.jit, static_argnames=('model',))
def _curvature(model, params, x, y, key):
  # Dense oracle and matrix-free estimates in one compiled function (one compilation per model and shape).
  fn = MODELS[model]
  flat, unravel = ravel_pytree(params)
  loss = lambda p: square_loss(fn, p, x, y)
  h = jax.hessian(lambda w: loss(unravel(w)))(flat)
  grads = jax.vmap(lambda xi: ravel_pytree(jax.grad(lambda p: fn(p, xi[None])[0])(params))[0])(x)
  matvec = optim.hessian_matvec(loss, params)
  ritz, _ = optim.ritz(optim.lanczos(matvec, params, key, min(30, flat.size)))
  hutch, hutch_err = optim.hutchinson_trace(matvec, params, key, num_probes=100)
  return h, grads, ritz[-1], hutch, hutch_err, loss(params)


@float64
def sharpness_metrics(model: str, params: PyTree, data: dict[str, np.ndarray], batch_size: int,
                      seed: int = 0) -> dict[str, float]:
  """Exact sharpness of a (near-)interpolating minimum, ``optim`` estimator cross-checks and the norms.

  ``H`` is the dense Hessian of the square loss (``jax.hessian``); ``eta*(B)`` is :func:`stability_threshold` of
  the per-sample gradients (exact for the linearisation at interpolation, where ``H = (1/n) sum_i g_i g_i^T``).
  ``lanczos_lambda_max`` (30 steps of ``optim.lanczos``) and ``hutchinson_trace`` (100 Rademacher probes of
  ``optim.hutchinson_trace``) are the matrix-free estimates on ``optim.hessian_matvec``.

  Args:
    model: ``'diagonal'`` or ``'relu'``.
    params: parameters of one run.
    data: the training data.
    batch_size: the ``B`` the minimum is checked against.
    seed: seed of the estimators.

  Returns:
    ``{'lambda_max', 'trace', 'frobenius', 'threshold', 'lanczos_lambda_max', 'hutchinson_trace',
    'hutchinson_stderr', 'loss'}`` plus ``'l1'`` (``||u * v||_1``, diagonal) or ``'path_norm'`` and
    ``'weighted_path_norm'`` (ReLU).
  """
  params = tree_float64(params)
  x, y = jnp.asarray(data['x'], jnp.float64), jnp.asarray(data['y'], jnp.float64)
  h, grads, ritz, hutch, hutch_err, loss = (np.asarray(a) for a in _curvature(model, params, x, y,
                                                                                jax.random.key(seed)))
  eig = np.linalg.eigvalsh(h)
  out = {'lambda_max': float(eig[-1]), 'trace': float(np.trace(h)), 'frobenius': float(np.linalg.norm(h)),
         'threshold': stability_threshold(grads, batch_size), 'lanczos_lambda_max': float(ritz),
         'hutchinson_trace': float(hutch), 'hutchinson_stderr': float(hutch_err), 'loss': float(loss)}
  if model == 'diagonal':
    out['l1'] = float(jnp.sum(jnp.abs(params['u'] * params['v'])))
  else:
    pre = x @ params['w'].T  # (n, m)
    active = np.asarray(pre > 0).mean(0)
    q = np.asarray(jnp.mean(jax.nn.relu(pre) ** 2, axis=0))
    a = np.abs(np.asarray(params['a']))
    out['path_norm'] = float(np.sum(a * np.linalg.norm(np.asarray(params['w']), axis=1)))
    out['weighted_path_norm'] = float(np.sum(a * np.sqrt(active * q)))
  return out


_METRICS = ('lambda_max', 'trace', 'frobenius', 'threshold', 'lanczos_lambda_max', 'hutchinson_trace',
            'hutchinson_stderr', 'loss', 'test_error')


def _test_error(model, params, data):
  if model == 'diagonal':
    beta = np.asarray(params['u'] * params['v'])
    return float(np.sum((beta - data['beta_star']) ** 2) / np.sum(data['beta_star'] ** 2))
  pred = np.asarray(relu_net(params, jnp.asarray(data['x_test'])))
  return float(np.mean((pred - data['y_test']) ** 2) / np.mean(data['y_test'] ** 2))


@float64
def nonlinear_experiment(model: str, data: dict[str, np.ndarray], learning_rates: Sequence[float],
                         batch_sizes: Sequence[int], num_steps: int, tolerance: float = 1e-8, seed: int = 0,
                         width: int = 50, init_scale: float = 1.0) -> dict[str, Any]:
  """Trains ``model`` by GD/SGD over a grid of learning rates and measures the minima found.

  A run counts as converged when its final full-batch loss is below ``tolerance`` (interpolation).

  Args:
    model: ``'diagonal'`` or ``'relu'``.
    data: training data (see :func:`sparse_regression_data`, :func:`sphere_teacher_data`).
    learning_rates: grid of ``eta``.
    batch_sizes: ``B`` values (``n`` means GD).
    num_steps: steps per run.
    tolerance: final-loss threshold for convergence.
    seed: integer seed.
    width: ReLU width.
    init_scale: initialisation scale.

  Returns:
    ``{'model', 'learning_rates', 'batch_sizes', 'runs'}``; ``runs[B]`` is a dict of arrays over learning rates
    (NaN where the run did not converge): ``converged``, ``final_loss``, ``test_error`` and every key of
    :func:`sharpness_metrics`.
  """
  lrs = np.asarray(learning_rates, np.float64)
  runs = {}
  for b in batch_sizes:
    params, losses = train_to_interpolation(model, data, lrs, b, num_steps, seed, width, init_scale)
    rows = []
    for i in range(len(lrs)):
      p = jax.tree.map(lambda a: a[i], params)
      if np.isfinite(losses[i]) and losses[i] < tolerance:
        row = sharpness_metrics(model, p, data, b, seed)
        row['test_error'] = _test_error(model, p, data)
        rows.append(row)
      else:
        rows.append(None)
    keys = list(_METRICS) + (['l1'] if model == 'diagonal' else ['path_norm', 'weighted_path_norm'])
    runs[int(b)] = {'converged': np.array([r is not None for r in rows]), 'final_loss': losses,
                    **{k: np.array([r[k] if r else np.nan for r in rows]) for k in keys}}
  return {'model': model, 'learning_rates': lrs, 'batch_sizes': np.asarray(batch_sizes), 'runs': runs}
