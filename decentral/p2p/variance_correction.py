r"""Variance-corrected model averaging (Tian, Al-Ars, Kitsak & Hofstee 2024, arXiv 2404.04616).

Averaging k *uncorrelated* models divides each layer's weight variance by about k (the "vanishing variance"
problem): gossip learning from independent initialisations then starts far below the Xavier-optimal variance and
stalls. Federated averaging does not suffer it, since every client starts each round from the server's model.
The correction rescales each layer's averaged weights about their mean so the layer keeps the spread of the models
averaged, layer by layer:

.. math::
   \bar\theta_\ell = \textstyle\sum_j w_j\, \theta_{j,\ell}, \qquad
   \hat\theta_\ell = \mu(\bar\theta_\ell) + \big(\bar\theta_\ell - \mu(\bar\theta_\ell)\big)\,
     \frac{\sum_j w_j\, \sigma(\theta_{j,\ell})}{\sigma(\bar\theta_\ell)},

with :math:`\mu, \sigma` the mean and standard deviation over the entries of one layer's tensor and :math:`w_j`
the averaging weights (uniform over the received models, or a gossip row :math:`W_{ij}`). Once the models are
correlated (a shared start, or after some rounds of mixing) :math:`\sigma(\bar\theta) \approx \bar\sigma` and
the correction is close to the identity, so it limits itself.

Conventions: the target is the weighted mean of the inputs' standard deviations (the paper preserves the input
models' variances layer by layer; its exact formula was not re-read from the PDF here, and no code was found);
``target='xavier'`` instead rescales to the Glorot standard deviation
:math:`\sqrt{2/(\mathrm{fan\_in} + \mathrm{fan\_out})}` of the layer's shape. Tensors of fewer than ``min_ndim``
dimensions (biases, norm scales) are plainly averaged: their spread is not set by the initialisation.

>>> import numpy as np
>>> models = np.random.default_rng(0).standard_normal((16, 32, 32))  # 16 uncorrelated layers, std 1
>>> round(float(models.mean(0).std()), 2), round(float(variance_corrected_mean(models).std()), 3)
(0.25, 1.0)
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from decentral import checks
from decentral.p2p.sgd import need_params, sgd_then
from decentral.p2p.topology import Topology, gossip
from decentral.stacked import compute_dtype
from optim import checks as optim_checks

TARGETS = ('inputs', 'xavier')


def _check(target, min_ndim, name):
  optim_checks.one_of(f'{name}: target', target, TARGETS)
  checks.non_negative_int(min_ndim, f'{name}: min_ndim')


def xavier_std(shape: tuple[int, ...]) -> float:
  """Glorot's sqrt(2 / (fan_in + fan_out)) for a kernel of ``shape`` (..., fan_in, fan_out); receptive field
  = the product of the leading dimensions (flax's Dense and Conv layouts)."""
  receptive = int(jnp.prod(jnp.asarray(shape[:-2]))) if len(shape) > 2 else 1
  return float((2.0 / (receptive * (shape[-2] + shape[-1]))) ** 0.5)


def rescale(averaged: jax.Array, target_std: jax.Array | float, eps: float = 1e-12) -> jax.Array:
  """``averaged`` rescaled about its mean to standard deviation ``target_std`` (over all its entries)."""
  x = averaged.astype(compute_dtype(averaged))
  mu = jnp.mean(x)
  return (mu + (x - mu) * (target_std / (jnp.std(x) + eps))).astype(averaged.dtype)


def variance_corrected_mean(stacked: Any, *, weights: jax.Array | None = None, target: str = 'inputs',
                            min_ndim: int = 2, f: int = 0, key: jax.Array | None = None) -> Any:
  """The variance-corrected average of the models stacked on axis 0 (see the module), leaf by leaf.

  Args:
    stacked: a pytree whose leaves have a leading axis of k models.
    weights: optional (k,) averaging weights summing to 1; uniform by default.
    target: 'inputs' (the weighted mean of the models' standard deviations) or 'xavier'.
    min_ndim: leaves of the single model with fewer dimensions are plainly averaged.
    f, key: unused; an aggregation rule's signature, so it can be passed where a rule is (``decentral.aggregate``).

  Returns:
    One model.
  """
  del f, key
  _check(target, min_ndim, 'variance_corrected_mean')

  def one(x):
    x = jnp.asarray(x)
    k = x.shape[0]
    w = jnp.full((k,), 1.0 / k) if weights is None else jnp.asarray(weights)
    xc = x.astype(compute_dtype(x))
    avg = jnp.tensordot(w.astype(xc.dtype), xc, 1)
    if x.ndim - 1 < min_ndim:
      return avg.astype(x.dtype)
    if target == 'xavier':
      goal = xavier_std(x.shape[1:])
    else:
      goal = jnp.dot(w.astype(xc.dtype), jnp.std(xc.reshape(k, -1), axis=1))
    return rescale(avg, goal).astype(x.dtype)

  return jax.tree.map(one, stacked)


def variance_corrected_gossip(topology: Topology, *, axis_name: str, target: str = 'inputs', min_ndim: int = 2
                              ) -> optax.GradientTransformation:
  r"""Gossip after the local step with variance correction: x_i moves to the corrected
  :math:`\sum_j W_{ij}(x_j + u_j)`, the target spread :math:`\sum_j W_{ij}\,\sigma(x_j + u_j)` per layer.

  Both sums are gossip steps along the topology (the standard deviations are one scalar per layer and worker), so
  a circulant graph still uses ``ppermute``.

  Args:
    topology: the graph (its size must match the axis).
    axis_name: the worker axis.
    target: 'inputs' or 'xavier' (see the module).
    min_ndim: leaves with fewer dimensions are plainly gossiped.

  Returns:
    A stateless ``GradientTransformation`` (needs ``params``).
  """
  _check(target, min_ndim, 'variance_corrected_gossip')

  def init_fn(params):
    del params
    return optax.EmptyState()

  def update_fn(updates, state, params=None):
    need_params(params, 'variance_corrected_gossip')
    half = jax.tree.map(lambda p, u: p.astype(compute_dtype(p)) + u.astype(compute_dtype(p)), params, updates)
    mixed = gossip(half, topology, axis_name)
    stds = gossip(jax.tree.map(jnp.std, half), topology, axis_name)

    def correct(m, s, p):
      if p.ndim < min_ndim:
        return m
      return rescale(m, xavier_std(p.shape) if target == 'xavier' else s)

    new = jax.tree.map(correct, mixed, stds, params)
    return jax.tree.map(lambda m, p: (m - p).astype(p.dtype), new, params), state

  return optax.GradientTransformation(init_fn, update_fn)


def variance_corrected_dsgd(learning_rate: optax.ScalarOrSchedule, topology: Topology, *, axis_name: str,
                            target: str = 'inputs', min_ndim: int = 2, momentum: float | None = None
                            ) -> optax.GradientTransformation:
  """Gossip learning with variance-corrected averaging: a local SGD step, then :func:`variance_corrected_gossip`.

  Args:
    learning_rate: step size (or schedule).
    topology: the communication graph.
    axis_name: the worker axis.
    target, min_ndim: see :func:`variance_corrected_gossip`.
    momentum: optional local heavy-ball momentum (optax.sgd convention).

  Returns:
    A ``GradientTransformation`` for one worker (needs ``params``).
  """
  return sgd_then('variance_corrected_dsgd', learning_rate, momentum,
                  lambda: variance_corrected_gossip(topology, axis_name=axis_name, target=target, min_ndim=min_ndim))
