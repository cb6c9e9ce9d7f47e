"""Sweeps of the SGD-noise experiments: the (alpha, T) phase diagram, the crossover temperature T_c against the
training-set size P (and its fitted exponent), and the perceptron's signal, noise and training time against T, P.

``T_c`` is read off the curve of a quantity ``q(T)`` that is flat at small ``T`` (the gradient-descent limit) and
grows above: the temperature where ``q`` first reaches ``factor`` times its value at the smallest ``T``
(interpolated in ``log T``). We use the relative weight change ``||w - w_0|| / ||w_0||`` (the trained model moves)
and the training time ``t*``; the paper's ``T_c`` is where SGD noise "starts affecting the trained model".
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from theory.numerics import float64
from theory.sgd_noise import network, perceptron


def crossover(temperatures: Sequence[float], values: np.ndarray, factor: float = 2.0) -> float:
  """The ``T`` where ``values`` (over increasing ``temperatures``) first reaches ``factor * values[0]``; NaN if
  it never does."""
  values = np.asarray(values, float)
  level = factor * values[0]
  above = np.nonzero(values >= level)[0]
  if not above.size or above[0] == 0:
    return math.nan
  j = above[0]
  s = (math.log(level) - math.log(values[j - 1])) / (math.log(values[j]) - math.log(values[j - 1]))
  return math.exp((1 - s) * math.log(temperatures[j - 1]) + s * math.log(temperatures[j]))


def fit_power(xs: Sequence[float], ys: Sequence[float]) -> float:
  """Least-squares slope of ``log y`` against ``log x`` over the finite points (NaN with fewer than two)."""
  xs, ys = np.asarray(xs, float), np.asarray(ys, float)
  ok = np.isfinite(ys) & (ys > 0)
  return float(np.polyfit(np.log(xs[ok]), np.log(ys[ok]), 1)[0]) if ok.sum() >= 2 else math.nan


def _train_over_temperatures(x, y, x_test, y_test, alpha, temperatures, seeds, **kw):
  run = jax.jit(jax.vmap(jax.vmap(
      lambda t, s: network.train(x, y, alpha=alpha, temperature=t, key=jax.random.key(s), x_test=x_test,
                                 y_test=y_test, **kw), in_axes=(None, 0)), in_axes=(0, None)))
  out = run(jnp.asarray(temperatures), jnp.arange(seeds))
  return {k: np.asarray(v) for k, v in out.items() if k != 'f_test'}


@float64
def phase_diagram(x, y, x_test, y_test, *, alphas: Sequence[float], temperatures: Sequence[float], seeds: int = 1,
                  batch: int = 16, width: int = 128, depth: int = 2, max_steps: int = 40_000) -> dict[str, Any]:
  """Test error, ``t*``, weight change and convergence on the ``(alpha, T)`` grid (arrays ``[alpha, T, seed]``)."""
  x, y, x_test, y_test = (jnp.asarray(a, jnp.float64) for a in (x, y, x_test, y_test))
  rows = [_train_over_temperatures(x, y, x_test, y_test, a, temperatures, seeds, batch=batch, width=width,
                                   depth=depth, max_steps=max_steps) for a in alphas]
  res = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
  return res | {'alphas': np.array(alphas), 'temperatures': np.array(temperatures), 'num_train': x.shape[0]}


@float64
def crossover_vs_size(x, y, x_test, y_test, *, sizes: Sequence[int], alpha: float, temperatures: Sequence[float],
                      seeds: int = 1, batch: int = 16, width: int = 128, depth: int = 2, max_steps: int = 40_000,
                      factor: float = 2.0) -> dict[str, Any]:
  """For each training-set size ``P`` (the first ``P`` points), the curves against ``T`` at fixed ``alpha``, the
  crossovers ``T_c`` of the weight change and of ``t*``, and their fitted exponents in ``P``."""
  x, y, x_test, y_test = (jnp.asarray(a, jnp.float64) for a in (x, y, x_test, y_test))
  curves = [_train_over_temperatures(x[:p], y[:p], x_test, y_test, alpha, temperatures, seeds, batch=batch,
                                     width=width, depth=depth, max_steps=max_steps) for p in sizes]
  res = {k: np.stack([c[k] for c in curves]) for k in curves[0]}  # [P, T, seed]
  tc = {name: np.array([crossover(temperatures, np.median(res[name][i], axis=-1), factor) for i in range(len(sizes))])
        for name in ('weight_change', 't_star')}
  return res | {'sizes': np.array(sizes), 'temperatures': np.array(temperatures), 'alpha': alpha, 'factor': factor,
                'tc_weight_change': tc['weight_change'], 'tc_t_star': tc['t_star'],
                'exponent_weight_change': fit_power(sizes, tc['weight_change']),
                'exponent_t_star': fit_power(sizes, tc['t_star'])}


@float64
def perceptron_sweep(*, d: int = 256, sizes: Sequence[int] = (64, 128, 256, 512), chis: Sequence[float] = (0.0, 1.0),
                     temperatures: Sequence[float] = (0.03, 0.1, 0.3, 1.0, 3.0, 10.0), seeds: int = 2, batch: int = 8,
                     max_steps: int = 200_000, seed: int = 0) -> dict[str, Any]:
  """Perceptron runs to zero hinge loss: ``t*``, signal ``w_1``, noise ``||w_perp||`` and the exact test error,
  arrays ``[chi, P, T, seed]``; the slope of ``t*`` in ``T`` over the three largest temperatures, and of the
  signal ``w_1`` at the largest ``T`` in ``P``."""
  names = ('t_star', 'w1', 'w_perp', 'converged', 'steps')
  res = {k: np.zeros((len(chis), len(sizes), len(temperatures), seeds)) for k in names}
  for a, chi in enumerate(chis):
    for b, p in enumerate(sizes):
      x, y = perceptron.sample_data(jax.random.key(seed * 1000 + 31 * a + b), p, d, chi)
      run = jax.jit(jax.vmap(jax.vmap(lambda t, s: perceptron.run_sgd(
          x, y, temperature=t, batch=batch, key=jax.random.key(s), max_steps=max_steps), in_axes=(None, 0)),
          in_axes=(0, None)))
      out = run(jnp.asarray(temperatures), jnp.arange(seeds))
      for k in names:
        res[k][a, b] = np.asarray(out[k])
  res['test_error'] = np.vectorize(lambda w1, wp, c: perceptron.test_error(w1, wp, c))(
      res['w1'], res['w_perp'], np.asarray(chis)[:, None, None, None])
  med = {k: np.median(res[k], axis=-1) for k in ('t_star', 'w1')}
  temps = np.asarray(temperatures)
  res['t_star_slope_in_T'] = np.array([[fit_power(temps[-3:], med['t_star'][a, b, -3:]) for b in range(len(sizes))]
                                       for a in range(len(chis))])
  res['w1_slope_in_P'] = np.array([fit_power(sizes, med['w1'][a, :, -1]) for a in range(len(chis))])
  res['w1_slope_in_T'] = np.array([[fit_power(temps[-3:], med['w1'][a, b, -3:]) for b in range(len(sizes))]
                                   for a in range(len(chis))])
  return res | {'d': d, 'sizes': np.array(sizes), 'chis': np.array(chis), 'temperatures': temps, 'batch': batch}
