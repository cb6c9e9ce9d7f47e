"""The FedOpt family: FedAvg, FedAvgM, FedAdam, FedYogi, each an :class:`~decentral.federated.rounds.Algorithm` with
FedAvg's clients and its own server optimizer.

The engine (:class:`decentral.federated.rounds.Federated`) hands the server optimizer the direction
g_t = sum_i w_i (x_t - y_K^i) / sum_i w_i (a pseudo-gradient: it points uphill, like a gradient) and applies
x_{t+1} = x_t + optimizer(g_t). Any optax transform fits (``Federated(server_optimizer=...)``); the named ones follow
Reddi et al., "Adaptive Federated Optimization", arXiv 2003.00295, in optax's conventions:

- :func:`fedavg`: SGD with lr 1, x_{t+1} = x_t - g_t = the weighted mean of the clients' models;
- :func:`fedavgm`: heavy-ball server momentum (Hsu, Qi & Brown, arXiv 1909.06335): v = beta v + g, x -= eta v;
- :func:`fedadam`, :func:`fedyogi`: Adam / Yogi on g with epsilon = tau (the paper's adaptivity degree).

Convention: optax's Adam and Yogi are bias-corrected, as Flower's FedAdam (decentral.md 1.4; Flower scales tau by
sqrt(1 - beta2^t) in addition, a difference of order tau). The paper's pseudo-code applies the moments without
bias correction; for that pass ``server_optimizer=optax.chain(optax.scale_by_adam(...), ...)`` or any transform.

>>> import jax.numpy as jnp
>>> tx = fedavg().server_optimizer
>>> u, _ = tx.update(jnp.array([0.5]), tx.init(jnp.zeros(1)))
>>> u.tolist()  # x_{t+1} = x_t - g_t
[-0.5]
"""

from __future__ import annotations

import optax

from decentral.federated.rounds import Algorithm


def fedavg() -> Algorithm:
  """FedAvg (McMahan et al., arXiv 1602.05629): x_{t+1} = x_t - g_t, server SGD with learning rate 1."""
  return Algorithm(name='fedavg', server_optimizer=optax.sgd(1.0))


def fedavgm(learning_rate: float = 1.0, momentum: float = 0.9) -> Algorithm:
  """FedAvgM: v_t = beta v_{t-1} + g_t, x_{t+1} = x_t - eta v_t (arXiv 1909.06335)."""
  return Algorithm(name='fedavgm', server_optimizer=optax.sgd(learning_rate, momentum=momentum))


def fedadam(learning_rate: float = 0.01, b1: float = 0.9, b2: float = 0.99, tau: float = 1e-3) -> Algorithm:
  """FedAdam: Adam on the pseudo-gradient with epsilon = tau (arXiv 2003.00295; bias-corrected, see the module)."""
  return Algorithm(name='fedadam', server_optimizer=optax.adam(learning_rate, b1=b1, b2=b2, eps=tau))


def fedyogi(learning_rate: float = 0.01, b1: float = 0.9, b2: float = 0.99, tau: float = 1e-3) -> Algorithm:
  """FedYogi: v_t = v_{t-1} - (1 - b2) g_t^2 sign(v_{t-1} - g_t^2), Adam's step otherwise (arXiv 2003.00295;
  optax's ``yogi``: bias-corrected, v initialised at 1e-6)."""
  return Algorithm(name='fedyogi', server_optimizer=optax.yogi(learning_rate, b1=b1, b2=b2, eps=tau))
