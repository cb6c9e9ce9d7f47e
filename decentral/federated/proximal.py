"""FedProx: FedAvg whose clients minimise their loss plus a proximal term to the global model.

Li, Sahu, Zaheer, Sanjabi, Talwalkar & Smith, "Federated Optimization in Heterogeneous Networks", MLSys 2020,
arXiv 1812.06127. Client i approximately minimises ``h_i(y) = F_i(y) + (mu / 2) |y - x_t|^2`` from ``y_0 = x_t``, so
every local step is fed the gradient of h_i on its batch::

    g_k = grad F_i(y_k; batch_k) + mu (y_k - x_t)

and the server aggregates as FedAvg. mu = 0 is FedAvg exactly. Conventions: the paper's analysis allows a
different number of local steps per client (its "gamma-inexact" solutions, used to model stragglers); here every
client runs the engine's K steps or E epochs (the FedProx paper's experiments with no dropped stragglers), and
the proximal gradient is handed to whatever local optimizer is configured (the paper: SGD). The official code
(litian96/FedProx, ``PerturbedGradientDescent``) adds mu (y - x_t) to the gradient the same way.

>>> import jax, jax.numpy as jnp, numpy as np, optax
>>> from decentral.federated import partitions, rounds, sampling
>>> data = partitions.pad({'x': np.array([1.0, 3.0])}, partitions.iid(2, 1))
>>> loss = lambda w, b: 0.5 * (w - b['x']) ** 2
>>> fed = rounds.Federated(loss, data, local=rounds.Local(optax.sgd(0.5), steps=2), sampler=sampling.everyone(1),
...                        algorithm=fedprox(1.0))
>>> s, _ = fed.round(fed.init(jnp.zeros(()), jax.random.key(0)))
>>> float(s.params)  # y1 = 0 - 0.5 (0 - 2) = 1; y2 = 1 - 0.5 ((1 - 2) + 1 (1 - 0)) = 1
1.0
"""

from __future__ import annotations

import jax

from decentral.federated.rounds import Algorithm, ClientContext, LocalStep


def fedprox(mu: float) -> Algorithm:
  """FedProx with proximal weight ``mu`` >= 0: each local gradient gets mu (y - x_t) added (arXiv 1812.06127)."""
  if not mu >= 0:
    raise ValueError(f'fedprox: mu must be >= 0, got {mu!r}')

  def local_gradient(step: LocalStep, params, ctx: ClientContext):
    return jax.tree.map(lambda g, y, x: g + mu * (y - x), step.grad(params), params, ctx.global_params)

  return Algorithm(name='fedprox', local_gradient=local_gradient)
