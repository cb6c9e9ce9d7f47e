"""Kernels of one finite network: the empirical NTK ``J J^T`` and the empirical NNGP of the readout.

The Jacobian rows ``J_i = d f(x_i) / d params`` are the per-example gradients of the output, taken with
:func:`optim.per_example_grads` (``vmap`` of ``grad``), so ``Theta_emp = J J^T`` sums the contraction over every
parameter leaf. The empirical NNGP is the covariance of ``f`` over the readout layer given the network's last
features ``z``: ``c^2 z z'^T / m + c_b^2`` (exact for any width when the network has one hidden layer, in
expectation over the other weights).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import optim
from theory.kernels.networks import Network


def empirical_ntk(network: Network, params, x: jax.Array) -> jax.Array:
  """``Theta_emp[i, j] = <d f(x_i)/d params, d f(x_j)/d params>`` over the rows of ``x`` (``N x ...``)."""
  jac = optim.per_example_grads(lambda p, xi: network.apply(p, xi)[0], params, x)
  return sum(jnp.tensordot(j, j, axes=(tuple(range(1, j.ndim)),) * 2) for j in jax.tree.leaves(jac))


def empirical_nngp(network: Network, params, x: jax.Array) -> jax.Array:
  """``c^2 z_i . z_j / m + c_b^2`` with ``z`` the readout's input (``m`` features) for each row of ``x``."""
  z = jax.vmap(lambda xi: network.apply(params, xi)[1])(x)
  return network.sigma_out ** 2 * z @ z.T / z.shape[1] + network.sigma_out_b ** 2


def empirical_kernels(network: Network, x: jax.Array, width: int, key: jax.Array) -> dict[str, jax.Array]:
  """``{'nngp', 'ntk'}`` of one network of ``width`` drawn with ``key``."""
  params = network.init(key, width)
  return {'nngp': empirical_nngp(network, params, x), 'ntk': empirical_ntk(network, params, x)}
