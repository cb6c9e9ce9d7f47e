"""Sweeps over the dimension and the sample size: overlaps of the last iterate, the average and the oracle, the
fitted threshold exponent, and a time trace."""

from __future__ import annotations

import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from theory.langevin.dynamics import estimate, overlap, run_langevin
from theory.langevin.problems import check_k, oracle, single_index_problem, tensor_problem
from theory.numerics import float64


def oracle_overlap(key: jax.Array, d: int, n: float, k: int, model: str = 'tensor') -> jax.Array:
  """Overlap of the closed-form oracle with ``theta*`` for one draw (cheap: no dynamics)."""
  make = tensor_problem if model == 'tensor' else single_index_problem
  problem = make(key, d, n, k)
  orc = oracle(problem, k)
  return overlap(estimate(orc, None, k) if k % 2 else estimate(None, orc, k), problem['theta_star'], k)


@float64
def sweep(k: int, model: str = 'tensor', dims: Sequence[int] = (8, 12, 16, 24), ratios: Sequence[float] = (
    0.1, 0.3, 1, 3, 10, 30), seeds: int = 4, eps_scale: float = 0.25, h_scale: float = 0.5,
          time_scale: float = 50.0) -> dict[str, Any]:
  """Overlap of the last iterate, the averaged iterate and the oracle against ``n = ratio * d^2``.

  ``eps = eps_scale * d``, ``h = h_scale / d``, run for time ``time_scale * d`` (``time_scale * d^2 /
  h_scale`` steps), half of it burn-in; the seeds run under ``vmap``. The theory asks for
  ``T >~ d^k / eps^2 = d^{k-2} / eps_scale^2``.

  Returns:
    Arrays ``[len(dims), len(ratios), seeds]`` of overlaps (``last``, ``average``, ``oracle``,
    ``oracle_cosine``), with ``dims``, ``ratios`` and ``n``.
  """
  check_k(k)
  dims, ratios = list(dims), list(ratios)
  res = {name: np.zeros((len(dims), len(ratios), seeds)) for name in ('last', 'average', 'oracle',
                                                                      'oracle_cosine')}
  make = tensor_problem if model == 'tensor' else single_index_problem
  for i, d in enumerate(dims):
    steps = int(time_scale * d * d / h_scale)
    for j, ratio in enumerate(ratios):
      n = ratio * d * d
      run = jax.jit(jax.vmap(lambda s: run_langevin(
          make(jax.random.fold_in(jax.random.key(1000 * i + 10 * j), s), d, n, k), k, eps=eps_scale * d,
          h=h_scale / d, steps=steps, burn_in=steps // 2, seed=s)))
      out = run(jnp.arange(seeds))
      for name in res:
        res[name][i, j] = np.asarray(out[name])
  res.update(dims=np.array(dims), ratios=np.array(ratios),
             n=np.array([[r * d * d for r in ratios] for d in dims]), k=k, model=model)
  return res


@float64
def oracle_sweep(k: int, model: str = 'tensor', dims: Sequence[int] = (8, 16, 32, 64),
                 ratios: Sequence[float] = tuple(np.geomspace(0.03, 100, 15)), seeds: int = 16) -> dict[str, Any]:
  """The oracle's overlap against ``n = ratio * d^2`` (many seeds, no dynamics): the threshold law."""
  res = np.zeros((len(dims), len(ratios), seeds))
  for i, d in enumerate(dims):
    if model == 'tensor':  # n only scales the noise: one compilation per d
      f = jax.jit(jax.vmap(lambda key, n: oracle_overlap(key, d, n, k, model), in_axes=(0, None)))
    for j, ratio in enumerate(ratios):
      if model != 'tensor':  # n is a shape
        f = jax.jit(jax.vmap(lambda key, n: oracle_overlap(key, d, n, k, model), in_axes=(0, None)),
                    static_argnums=1)
      keys = jax.vmap(lambda s: jax.random.key(7919 * i + 31 * j + s))(jnp.arange(seeds))
      res[i, j] = np.asarray(f(keys, int(ratio * d * d) if model != 'tensor' else ratio * d * d))
  return {'oracle': res, 'dims': np.array(dims), 'ratios': np.array(ratios),
          'n': np.array([[r * d * d for r in ratios] for d in dims]), 'k': k, 'model': model}


def threshold_exponent(result: dict[str, Any], name: str = 'oracle', level: float = 0.5) -> dict[str, Any]:
  """Fits ``log n*(d) = a + p log d``, with ``n*`` where the median overlap crosses ``level``.

  ``n*`` is interpolated in ``log n`` between the grid points around the first crossing.
  """
  med = np.median(result[name], axis=-1)
  n = result['n']
  n_star = []
  for i in range(med.shape[0]):
    above = np.nonzero(med[i] >= level)[0]
    j = above[0] if above.size else None
    if j is None or j == 0:
      n_star.append(np.nan)
      continue
    t = (level - med[i, j - 1]) / (med[i, j] - med[i, j - 1])
    n_star.append(math.exp((1 - t) * math.log(n[i, j - 1]) + t * math.log(n[i, j])))
  n_star = np.array(n_star)
  ok = np.isfinite(n_star)
  slope = float(np.polyfit(np.log(result['dims'][ok]), np.log(n_star[ok]), 1)[0]) if ok.sum() >= 2 else np.nan
  return {'n_star': n_star, 'exponent': slope, 'level': level}


@float64
def time_trace(k: int, model: str = 'tensor', d: int = 16, ratio: float = 10.0, eps_scale: float = 0.25,
               h_scale: float = 0.5, time_scale: float = 50.0, records: int = 100, seed: int = 0
               ) -> dict[str, np.ndarray]:
  """Running overlaps of the last iterate and of the running average (no burn-in) over time."""
  make = tensor_problem if model == 'tensor' else single_index_problem
  steps = int(time_scale * d * d / h_scale)
  every = max(1, steps // records)
  out = run_langevin(make(jax.random.key(seed), d, ratio * d * d, k), k, eps=eps_scale * d, h=h_scale / d,
                     steps=every * records, record_every=every, seed=seed)
  return {name: np.asarray(v) for name, v in out.items()} | {'d': d, 'k': k, 'model': model,
                                                              'time': np.asarray(out['trace_steps']) * h_scale / d}
