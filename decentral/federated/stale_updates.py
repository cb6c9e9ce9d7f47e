"""FedStale and FedVARP: the server keeps every client's latest update and mixes the stale ones of absent clients in.

- FedVARP: Jhunjhunwala, Sharma, Nagarkatti & Joshi, "FedVARP: Tackling the Variance Due to Partial Client
  Participation in Federated Learning", UAI 2022, arXiv 2207.14130 (a SAGA-type correction on the server).
- FedStale: Rodio & Neglia, "FedStale: leveraging stale client updates in federated learning", arXiv 2405.04171;
  official code arodio/FedStale (``HistorySGD(history_coefficient=beta)`` with ``HistoryTracker``).

The server holds y_j, the last update (pseudo-gradient x - y_K, the engine's sign) of every client j, zero until
the client first participates. In a round with participants S, aggregation weights p_j = n_j / sum_l n_l over all N
clients and participation probabilities pi_i (the sampler's ``inclusion``)::

    direction = sum_{i in S} q_i (Delta_i - beta y_i) + beta sum_j p_j y_j,     q_i = p_i / pi_i
    y_i <- Delta_i for i in S

then the server optimizer takes ``direction`` (FedAvg's SGD with lr 1 by default). beta = 0 is FedAvg in its
unbiased form sum_{i in S} (p_i / pi_i) Delta_i (equal to the participants' weighted mean when sizes are equal and
sampling is uniform); beta = 1 is FedVARP, whose direction is unbiased for the full-participation update with a
variance that vanishes as the stored y_j approach the current updates. The guideline of the FedStale paper: stale
updates help most under high data heterogeneity and less under high participation heterogeneity.

Conventions (the official code): weights p_j by sample counts; q_i = p_i / pi_i with the known probabilities (the
code can also estimate them); y_j starts at zero; the stale term is added after the server's momentum in the code
(its HistorySGD), whereas here the whole direction goes through the server optimizer: identical for the papers'
server SGD without momentum, and with momentum the stale term is then averaged into the momentum too.
``weights='uniform'`` uses p_j = 1/N (FedVARP's paper's equal-weight setting) instead of sample counts.

>>> import jax, jax.numpy as jnp, numpy as np, optax
>>> from decentral.federated import partitions, rounds, sampling
>>> data = partitions.pad({'x': np.array([0.0, 4.0])}, partitions.iid(2, 2))
>>> loss = lambda w, b: 0.5 * (w - b['x']) ** 2
>>> fed = rounds.Federated(loss, data, local=rounds.Local(optax.sgd(1.0), steps=1),
...                        sampler=sampling.bernoulli([1.0, 1.0]), algorithm=fedvarp())
>>> s, _ = fed.round(fed.init(jnp.zeros(()), jax.random.key(0)))   # both clients: FedAvg, mean of the data
>>> float(s.params), s.table.tolist()                              # and the table holds each Delta_i
(2.0, [0.0, -4.0])
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from decentral import checks
from decentral.federated.rounds import Algorithm, ClientContext, ClientOutput, ServerState, Tools


def _weights(counts: jax.Array, weights: str) -> jax.Array:
  dtype = jnp.result_type(float)  # float64 under x64
  if weights == 'uniform':
    return jnp.full(counts.shape, 1.0 / counts.shape[0], dtype)
  counts = counts.astype(dtype)
  return counts / jnp.maximum(jnp.sum(counts), 1.0)


def fedstale(beta: float, *, weights: str = 'samples') -> Algorithm:
  """FedStale with stale-update weight ``beta`` in [0, 1] (arXiv 2405.04171); beta = 1 is FedVARP.

  Args:
    beta: how much of the stored updates is mixed in (0: unbiased FedAvg, 1: FedVARP).
    weights: p_j, ``'samples'`` (n_j / sum n, the official code) or ``'uniform'`` (1/N).
  """
  beta = checks.unit_interval(beta, 'fedstale: beta')
  if weights not in ('samples', 'uniform'):
    raise ValueError(f"fedstale: weights must be 'samples' or 'uniform', got {weights!r}")

  def init_row(params):
    return jax.tree.map(jnp.zeros_like, params)

  def prepare(state: ServerState, counts):
    p = _weights(counts, weights)
    stale = jax.tree.map(lambda t: jnp.tensordot(p.astype(t.dtype), t, axes=1), state.table)
    return {'p': p, 'stale_mean': stale}

  def client(ctx: ClientContext, tools: Tools) -> ClientOutput:
    y, loss = tools.train(ctx.global_params)
    update = jax.tree.map(lambda a, b: a - b, ctx.global_params, y)
    p = ctx.server['p'][ctx.client]
    q = jnp.where(ctx.active, p / jnp.maximum(ctx.inclusion, 1e-12), 0.0)
    return ClientOutput(update, q, update, (), loss)  # the new row is Delta_i: the server stores it

  def aggregate(out: ClientOutput, ctx: ClientContext):
    fresh = jax.tree.map(lambda d, y: out.weight.astype(d.dtype) * (d - beta * y), out.update, ctx.row)
    return jax.tree.map(lambda f, s: lax.psum(f, ctx.axis_name) + beta * s, fresh, ctx.server['stale_mean'])

  return Algorithm(name='fedvarp' if beta == 1.0 else 'fedstale', init_row=init_row, prepare=prepare, client=client,
                   aggregate=aggregate)


def fedvarp(*, weights: str = 'samples') -> Algorithm:
  """FedVARP (arXiv 2207.14130): FedStale with beta = 1, direction sum_S q_i (Delta_i - y_i) + sum_j p_j y_j."""
  return fedstale(1.0, weights=weights)
