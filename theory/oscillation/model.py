"""The two-layer convolutional network of the benign-oscillation experiments, its loss and feature alignments.

    f(W, x) = F_{+1}(W_{+1}, x) - F_{-1}(W_{-1}, x),     F_j = (1/m) sum_{r=1}^m sum_p sigma(<w_{j,r}, x^(p)>)

with ``W`` of shape ``(2, m, d)`` (row 0: ``j = +1``, row 1: ``j = -1``) and the second layer fixed at ``+-1/m``,
the architecture of this line of feature-learning analyses (Cao et al., arXiv 2202.06526). The activation is
the squared ReLU ``sigma(z) = max(z, 0)^2`` by default and the loss the square loss ``(f - y)^2 / 2``; with the
logistic loss or a plain ReLU the runs here never oscillate at a bounded learning rate (the loss saturates
instead), which is why the square loss is the default. The paper's own activation and loss were not checked.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

ACTIVATIONS = {
    'relu2': lambda z: jax.nn.relu(z) ** 2,
    'relu': jax.nn.relu,
}
LOSSES = ('square', 'logistic')


def init_filters(seed: int, width: int, dim: int, init_std: float = 0.01) -> jax.Array:
  """Filters ``W ~ N(0, init_std^2)`` of shape ``(2, width, dim)`` (small initialisation)."""
  return init_std * jax.random.normal(jax.random.key(seed), (2, width, dim))


def cnn_output(filters: jax.Array, x: jax.Array, activation: str = 'relu2') -> jax.Array:
  """``f(W, x)`` for inputs ``x`` of shape ``(n, P, d)``; returns ``(n,)``."""
  if activation not in ACTIVATIONS:
    raise ValueError(f'cnn_output: activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}')
  per_filter = ACTIVATIONS[activation](jnp.einsum('jrd,npd->njrp', filters, x)).sum(-1).mean(-1)  # (n, 2)
  return per_filter[:, 0] - per_filter[:, 1]


def loss(filters: jax.Array, x: jax.Array, y: jax.Array, activation: str = 'relu2', kind: str = 'square'
         ) -> jax.Array:
  """Mean square loss ``(f - y)^2 / 2`` or logistic loss ``log(1 + exp(-y f))``."""
  out = cnn_output(filters, x, activation)
  if kind == 'square':
    return 0.5 * jnp.mean((out - y) ** 2)
  if kind == 'logistic':
    return jnp.mean(jnp.logaddexp(0.0, -y * out))
  raise ValueError(f'loss: kind must be one of {LOSSES}, got {kind!r}')


def feature_alignment(filters: jax.Array, feature: jax.Array) -> jax.Array:
  """``A = (1/2) sum_j max_r <w_{j,r}, j * feature> / ||feature||``: how far the filters of each class have
  grown along that class's copy of a feature (``j = +1`` sees ``+feature``, ``j = -1`` sees ``-feature``)."""
  unit = feature / jnp.linalg.norm(feature)
  proj = filters @ unit  # (2, m)
  return 0.5 * (jnp.max(proj[0]) + jnp.max(-proj[1]))
