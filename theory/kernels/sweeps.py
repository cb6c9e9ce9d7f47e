"""Finite networks against their infinite-width kernels as the width grows, and the fitted approach rate.

The error of one network is ``||K_emp - K_inf||_F / ||K_inf||_F`` over the ``N x N`` matrix of fixed inputs; the
CLT over neurons predicts ``O(width^{-1/2})`` fluctuations (the mean bias is ``O(1/width)``), so the root mean
square over seeds should fall with slope ``-1/2`` on a log-log plot.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from theory.kernels.empirical import empirical_kernels
from theory.kernels.networks import Network, cnn_network, mlp_network, rnn_network
from theory.kernels.recursions import cnn_kernels, mlp_kernels, rnn_kernels
from theory.numerics import float64


class Architecture(NamedTuple):
  kernels: Callable[[jax.Array], dict]   # x -> {'nngp', 'ntk'} at infinite width
  network: Network                       # the finite network in the same parametrization
  input_shape: tuple[int, ...]           # one input's shape


def architecture(name: str) -> Architecture:
  """One of ``mlp_relu``, ``mlp_erf``, ``cnn_relu``, ``cnn_erf`` (GAP readout), ``cnn_relu_flatten``,
  ``rnn_erf``, ``rnn_relu``, with the sizes and scales the experiment uses."""
  arch, act, *rest = name.split('_')
  if arch == 'mlp' and not rest:
    kw = dict(depth=2, activation=act, sigma_w=1.5, sigma_b=0.1)
    return Architecture(lambda x: mlp_kernels(x, **kw), mlp_network(8, **kw), (8,))
  if arch == 'cnn' and rest in ([], ['flatten']):
    kw = dict(depth=2, filter_size=3, readout=rest[0] if rest else 'gap', activation=act, sigma_w=1.5,
              sigma_b=0.1)
    return Architecture(lambda x: cnn_kernels(x, **kw), cnn_network(8, 3, **kw), (8, 3))
  if arch == 'rnn' and not rest:
    kw = dict(activation=act, sigma_w=1.2 if act == 'erf' else 1.0, sigma_u=1.0, sigma_b=0.1, sigma_v=1.0)
    return Architecture(lambda x: rnn_kernels(x, **kw), rnn_network(3, **kw), (4, 3))
  raise ValueError(f'theory.kernels.architecture: unknown architecture {name!r}; known: mlp_relu, mlp_erf, '
                   'cnn_relu, cnn_erf, cnn_relu_flatten, rnn_erf, rnn_relu')


def fixed_inputs(arch: Architecture, num: int = 5, seed: int = 0) -> jax.Array:
  """``num`` standard normal inputs of the architecture's shape (call inside a float64 function)."""
  return jax.random.normal(jax.random.key(seed), (num,) + arch.input_shape, jnp.float64)


def relative_error(emp: jax.Array, inf: jax.Array) -> jax.Array:
  return jnp.linalg.norm(emp - inf) / jnp.linalg.norm(inf)


def fit_slope(widths: Sequence[int], errors: np.ndarray) -> float:
  """Least-squares slope of ``log(error)`` against ``log(width)``."""
  return float(np.polyfit(np.log(np.asarray(widths, float)), np.log(np.asarray(errors, float)), 1)[0])


@float64
def width_sweep(name: str, widths: Sequence[int] = (32, 64, 128, 256, 512), seeds: int = 8, num_inputs: int = 5,
                ) -> dict[str, Any]:
  """Relative errors of the empirical NNGP and NTK against the recursions, for each width and seed.

  Returns:
    ``widths``; ``nngp_error``, ``ntk_error`` (``[len(widths), seeds]``); their root mean squares over seeds
    ``nngp_rms``, ``ntk_rms``; the fitted slopes ``nngp_slope``, ``ntk_slope``; and the infinite-width kernels.
  """
  arch = architecture(name)
  x = fixed_inputs(arch, num_inputs)
  inf = arch.kernels(x)
  errors = {kind: np.zeros((len(widths), seeds)) for kind in ('nngp', 'ntk')}
  for i, width in enumerate(widths):
    run = jax.jit(jax.vmap(lambda key: {kind: relative_error(k, inf[kind]) for kind, k in
                                        empirical_kernels(arch.network, x, width, key).items()}))
    out = run(jax.vmap(lambda s: jax.random.key(10_000 * i + s))(jnp.arange(seeds)))
    for kind in errors:
      errors[kind][i] = np.asarray(out[kind])
  res = {'name': name, 'widths': np.array(widths), 'nngp_inf': np.asarray(inf['nngp']),
         'ntk_inf': np.asarray(inf['ntk'])}
  for kind, err in errors.items():
    rms = np.sqrt(np.mean(err ** 2, axis=1))
    res |= {f'{kind}_error': err, f'{kind}_rms': rms, f'{kind}_slope': fit_slope(widths, rms)}
  return res
