"""Finite networks whose infinite-width kernels :mod:`theory.kernels.recursions` computes, in the same NTK
parametrization (weights ``N(0, 1)`` scaled by ``sigma / sqrt(fan_in)`` in the forward pass).

Each ``<arch>_network(...)`` returns a :class:`Network` ``(init, apply, sigma_out, sigma_out_b)``:
``init(key, width)`` draws the parameters and ``apply(params, x) -> (f, z)`` maps one input (no batch axis) to the
scalar output ``f`` and the readout's input ``z`` (length ``m``), so that ``f = c z . w / sqrt(m) + c_b b``
(``c, c_b`` = ``sigma_out, sigma_out_b``) and the NNGP of the finite network, the covariance of ``f`` over the
readout weights given ``z``, is ``c^2 z . z' / m + c_b^2`` (:func:`theory.kernels.empirical.empirical_nngp`).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from theory.kernels.expectations import phi


class Network(NamedTuple):
  init: Callable      # (key, width) -> params
  apply: Callable     # (params, x) -> (f, z), one input
  sigma_out: float    # the readout's weight scale c
  sigma_out_b: float  # the readout's bias scale c_b


def _normal(key, shapes: dict) -> dict:
  keys = jax.random.split(key, len(shapes))
  return {name: jax.random.normal(k, shape) for k, (name, shape) in zip(keys, shapes.items())}


def mlp_network(d: int, *, depth: int = 2, activation: str = 'relu', sigma_w: float = 1.5,
                sigma_b: float = 0.1) -> Network:
  """The MLP of :func:`theory.kernels.mlp_kernels` on inputs of dimension ``d``."""
  act = phi(activation)

  def init(key, width):
    shapes = {'w0': (d, width), 'b0': (width,)}
    for l in range(1, depth):
      shapes |= {f'w{l}': (width, width), f'b{l}': (width,)}
    return _normal(key, shapes | {'w_out': (width,), 'b_out': ()})

  def apply(params, x):
    h = sigma_w * x @ params['w0'] / jnp.sqrt(d) + sigma_b * params['b0']
    for l in range(1, depth):
      h = sigma_w * act(h) @ params[f'w{l}'] / jnp.sqrt(h.shape[0]) + sigma_b * params[f'b{l}']
    z = act(h)
    return sigma_w * z @ params['w_out'] / jnp.sqrt(z.shape[0]) + sigma_b * params['b_out'], z

  return Network(init, apply, sigma_w, sigma_b)


def _conv(x, w, k):
  """Circular stride-1 convolution of ``x`` (``L x C``) with ``w`` (``k x C x C'``), unscaled."""
  half = (k - 1) // 2
  return sum(jnp.roll(x, -b, axis=0) @ w[b + half] for b in range(-half, half + 1))


def cnn_network(length: int, channels: int, *, depth: int = 2, filter_size: int = 3, readout: str = 'gap',
                activation: str = 'relu', sigma_w: float = 1.5, sigma_b: float = 0.1) -> Network:
  """The 1-D CNN of :func:`theory.kernels.cnn_kernels` on inputs ``length x channels``."""
  act, k = phi(activation), filter_size

  def init(key, width):
    shapes = {'w0': (k, channels, width), 'b0': (width,)}
    for l in range(1, depth):
      shapes |= {f'w{l}': (k, width, width), f'b{l}': (width,)}
    return _normal(key, shapes | {'w_out': (width if readout == 'gap' else width * length,), 'b_out': ()})

  def apply(params, x):
    h = sigma_w * _conv(x, params['w0'], k) / jnp.sqrt(k * channels) + sigma_b * params['b0']
    for l in range(1, depth):
      h = sigma_w * _conv(act(h), params[f'w{l}'], k) / jnp.sqrt(k * h.shape[1]) + sigma_b * params[f'b{l}']
    z = act(h).mean(axis=0) if readout == 'gap' else act(h).reshape(-1)
    return sigma_w * z @ params['w_out'] / jnp.sqrt(z.shape[0]) + sigma_b * params['b_out'], z

  return Network(init, apply, sigma_w, sigma_b)


def rnn_network(d: int, *, activation: str = 'erf', sigma_w: float = 1.0, sigma_u: float = 1.0,
                sigma_b: float = 0.1, sigma_v: float = 1.0) -> Network:
  """The simple RNN of :func:`theory.kernels.rnn_kernels` on sequences ``T x d`` (one ``W`` shared by all steps)."""
  act = phi(activation)

  def init(key, width):
    return _normal(key, {'w': (width, width), 'u': (d, width), 'b': (width,), 'v': (width,)})

  def apply(params, x):
    width = params['b'].shape[0]

    def step(s, xt):
      s = act(sigma_w * s @ params['w'] / jnp.sqrt(width) + sigma_u * xt @ params['u'] / jnp.sqrt(d)
              + sigma_b * params['b'])
      return s, None

    s, _ = jax.lax.scan(step, jnp.zeros(width, x.dtype), x)
    return sigma_v * s @ params['v'] / jnp.sqrt(width), s

  return Network(init, apply, sigma_v, 0.0)
