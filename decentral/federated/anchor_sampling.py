"""FedAMD: anchor sampling. Each participant is an anchor (a large-batch gradient, the client's "bullseye") or a
miner (local steps steered by the average bullseye); only the miners move the model.

Wu, Guo, Qu, He, Liu & Gao, "Anchor Sampling for Federated Learning with Partial Client Participation", ICML 2023,
arXiv 2206.05891; official code HarliWu/FedAMD (``algo/fedamd.py``, ``main_fmnist.py``), which this follows.

The server keeps v_j, the latest bullseye of every client j, initialised by one full pass (v_j = grad f_j(x_0),
as the code does before training), and broadcasts g_t = (1/N) sum_j v_j. Round t, participant i:

- **anchor** with probability p (``anchor_probability``; or, with ``anchor_every`` = P, every participant in the
  rounds t = 0 mod P: the paper's "sequential" probability): v_i <- grad f_i(x_t) on its whole local data
  (stored now, used from the next round on); it sends that gradient and no model update;
- **miner** otherwise: K local steps from y_0 = x_t with a recursive (SARAH-type) estimate, both gradients on the
  step's batch xi_k::

      d_k = grad f_i(y_k; xi_k) - grad f_i(y_{k-1}; xi_k) + d_{k-1},   d_{-1} = g_t, y_{-1} = y_0
      y_{k+1} = y_k - eta d_k                                          (the local optimizer fed d_k: SGD here)

  so the first step is y_1 = x_t - eta g_t; it sends Delta_i = x_t - y_K.

The server: x_{t+1} = x_t - eta_g mean_{miners} Delta_i (the engine's server optimizer; FedAvg's SGD with lr 1 by
default); a round without miners leaves the model unchanged. Each miner step costs two gradient evaluations.

Conventions: the official code averages uniformly, both g_t over all N clients and the miners' updates
(``weights='uniform'``); ``weights='samples'`` weights both by the clients' sample counts. The code's miner
recursion is SARAH-type (``recursion='sarah'``, above); ``recursion='anchored'`` uses
d_k = grad f_i(y_k; xi_k) - grad f_i(x_t; xi_k) + g_t instead (an SVRG/SCAFFOLD-type reading of the paper's
description). The anchor's large batch is the client's whole data (the code's ``fullbsz``).

>>> import jax, jax.numpy as jnp, numpy as np, optax
>>> from decentral.federated import partitions, rounds, sampling
>>> data = partitions.pad({'x': np.array([0.0, 4.0])}, partitions.iid(2, 2))
>>> loss = lambda w, b: 0.5 * (w - b['x']) ** 2
>>> fed = rounds.Federated(loss, data, local=rounds.Local(optax.sgd(0.5), steps=1),
...                        sampler=sampling.everyone(2), algorithm=fedamd(anchor_probability=0.0))
>>> s0 = fed.init(jnp.ones(()), jax.random.key(0))
>>> sorted(s0.table.tolist())                  # v_j = grad f_j(x_0) = x_0 - x_j
[-3.0, 1.0]
>>> s1, _ = fed.round(s0)                      # all miners: y_1 = x_0 - 0.5 g_0 = 1 - 0.5 (-1) = 1.5
>>> float(s1.params)
1.5
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from decentral import axis, checks
from decentral.federated.rounds import Algorithm, ClientContext, ClientOutput, LocalStep, ServerState, Tools
from decentral.ledger import dense_nbytes

RECURSIONS = ('sarah', 'anchored')


def _mean_rows(table, counts, weights):
  n = counts.shape[0]
  w = (jnp.full((n,), 1.0 / n) if weights == 'uniform'
       else counts.astype(jnp.float32) / jnp.maximum(jnp.sum(counts), 1))
  return jax.tree.map(lambda t: jnp.tensordot(w.astype(t.dtype), t, axes=1), table)


def fedamd(anchor_probability: float = 0.2, *, anchor_every: int | None = None, recursion: str = 'sarah',
           weights: str = 'uniform') -> Algorithm:
  """FedAMD (arXiv 2206.05891): anchors refresh their full-batch gradient, miners run recursive local steps.

  Args:
    anchor_probability: p, each participant's chance of being an anchor (the "constant probability" setting).
    anchor_every: P; if given, every participant is an anchor in rounds t = 0 mod P and a miner otherwise (the
      "sequential" setting; ``anchor_probability`` is then ignored).
    recursion: ``'sarah'`` (the official code) or ``'anchored'`` (see the module).
    weights: ``'uniform'`` (the code) or ``'samples'``: how g_t and the miners' average weight the clients.
  """
  p = checks.unit_interval(anchor_probability, 'fedamd: anchor_probability')
  if anchor_every is not None:
    checks.positive_int(anchor_every, 'fedamd: anchor_every')
  if recursion not in RECURSIONS:
    raise ValueError(f'fedamd: recursion must be one of {RECURSIONS}, got {recursion!r}')
  if weights not in ('uniform', 'samples'):
    raise ValueError(f"fedamd: weights must be 'uniform' or 'samples', got {weights!r}")

  def init_client(params, tools: Tools):
    return tools.full_gradient(params)  # the code's full pass before the first round

  def broadcast(state: ServerState, counts):
    return _mean_rows(state.table, counts, weights)

  def local_state(params, ctx: ClientContext):
    return {'d': ctx.broadcast, 'previous': params}

  def local_gradient(step: LocalStep, y, ctx: ClientContext, s):
    if recursion == 'sarah':
      d = jax.tree.map(lambda a, b, c: a - b + c, step.grad(y), step.grad(s['previous']), s['d'])
    else:
      d = jax.tree.map(lambda a, b, c: a - b + c, step.grad(y), step.grad(ctx.global_params), ctx.broadcast)
    return d, {'d': d, 'previous': y}

  def client(ctx: ClientContext, tools: Tools) -> ClientOutput:
    if anchor_every is not None:
      anchor = ctx.round % anchor_every == 0
    else:
      anchor = jax.random.uniform(jax.random.fold_in(ctx.key, 2)) < p
    x = ctx.global_params
    zeros = jax.tree.map(jnp.zeros_like, x)

    def as_anchor(_):
      bullseye = tools.full_gradient(x)
      loss = jnp.sum(tools.loss_fn(x, tools.data) * tools.mask) / jnp.maximum(jnp.sum(tools.mask), 1)
      return axis.varying((zeros, jnp.zeros([], jnp.float32), bullseye, loss.astype(jnp.float32)), ctx.axis_name)

    def as_miner(_):
      y, loss = tools.train(x)
      update = jax.tree.map(lambda a, b: a - b, x, y)
      weight = (ctx.count > 0).astype(jnp.float32) if weights == 'uniform' else ctx.count.astype(jnp.float32)
      return axis.varying((update, weight, ctx.row, loss), ctx.axis_name)

    update, weight, row, loss = lax.cond(anchor, as_anchor, as_miner, None)
    # Anchors send a gradient, miners an update: one model-sized vector either way.
    return ClientOutput(update, weight, row, (), loss, sent=dense_nbytes(x))

  name = 'fedamd' if recursion == 'sarah' else 'fedamd_anchored'
  return Algorithm(name=name, init_client=init_client, init_row=lambda params: jax.tree.map(jnp.zeros_like, params),
                   broadcast=broadcast, local_state=local_state, local_gradient=local_gradient, client=client)
