r"""DFedSAM and DFedSAM-MGS (Shi et al., ICML 2023, arXiv 2302.04083): local SAM steps, then Q gossip steps.

Each worker runs K local steps of sharpness-aware minimization on its own data, then mixes its model with its
neighbours' Q times (multiple gossip steps, MGS; Q = 1 is DFedSAM):

.. math::
   \epsilon = \rho\,\frac{g}{\lVert g\rVert}, \quad g = \nabla f_i(y;\xi), \qquad
   y \leftarrow y - \eta\,\nabla f_i(y + \epsilon;\xi) \quad (K \text{ times}), \qquad
   x_i \leftarrow \textstyle\sum_j (W^Q)_{ij}\, y_j .

Both gradients use the same minibatch :math:`\xi`. The pieces are separate transforms, chained by :func:`dfedsam`:

- :func:`sam_gradient`: the SAM gradient :math:`\nabla f_i(y + \rho g / \lVert g\rVert)` from the plain gradient
  and the batch loss (``update(grads, state, params, loss_fn=...)``);
- :func:`multi_gossip`: after every K-th local step, Q gossip steps along the topology (one ``ppermute`` per
  neighbour on a circulant graph, else a gather); in between the worker's model moves alone.

DFedSAM with :math:`\rho = 0`, Q = 1 and K = 1 is D-SGD (:func:`decentral.dsgd`). No official code was found; the
update follows the paper's algorithm. Convention: :math:`\lVert g\rVert` is the norm of the worker's whole
gradient tree (as in SAM), plus ``eps`` = 1e-12 against a zero gradient.

>>> import jax, jax.numpy as jnp, optax
>>> from decentral import axis
>>> from decentral.p2p import topology
>>> tx = dfedsam(0.1, topology.ring(4), rho=0.0, axis_name='workers')
>>> def step(p):
...   loss_fn = lambda q: 0.5 * jnp.sum(q ** 2)
...   u, _ = tx.update(jax.grad(loss_fn)(p), tx.init(p), p, loss_fn=loss_fn)
...   return optax.apply_updates(p, u)
>>> [round(float(v), 3) for v in axis.run(step, 4)(jnp.arange(4.0)[:, None])[:, 0]]  # = D-SGD's
[1.2, 0.9, 1.8, 1.5]
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from decentral import axis, checks
from decentral.p2p.sgd import need_params, sgd_then
from decentral.p2p.topology import Topology, gossip
from optim import checks as optim_checks


class MultiGossipState(NamedTuple):
  count: jax.Array  # local steps taken


def sam_gradient(rho: float, *, eps: float = 1e-12) -> optax.GradientTransformationExtraArgs:
  r"""The SAM gradient (Foret et al. 2021): :math:`\nabla f(y + \rho\, g / \lVert g\rVert)` with g the incoming
  gradient at y.

  ``update(grads, state, params, *, loss_fn)``: ``loss_fn(params)`` is the worker's loss on the batch that gave
  ``grads`` (the same minibatch for both passes). With ``rho == 0`` it returns ``grads`` unchanged (no second
  pass).

  Args:
    rho: the perturbation radius, >= 0.
    eps: added to the gradient norm.

  Returns:
    A stateless ``GradientTransformationExtraArgs`` (needs ``params`` and ``loss_fn`` when ``rho > 0``).
  """
  if not isinstance(rho, (int, float)):  # update branches on rho == 0 in Python
    raise ValueError(f'{optim_checks.qualified("sam_gradient: rho")} must be a number, got {rho!r}')
  optim_checks.non_negative('sam_gradient: rho', rho)

  def init_fn(params):
    del params
    return optax.EmptyState()

  def update_fn(updates, state, params=None, *, loss_fn: Callable | None = None, **extra):
    del extra
    if rho == 0:
      return updates, state
    if params is None or loss_fn is None:
      raise ValueError('sam_gradient needs params and loss_fn: update(grads, state, params, loss_fn=...)')
    norm = optax.global_norm(updates)
    scale = rho / (norm + eps)
    perturbed = jax.tree.map(lambda p, g: (p + scale * g).astype(p.dtype), params, updates)
    sharp = jax.grad(loss_fn)(perturbed)
    return jax.tree.map(lambda s, g: s.astype(g.dtype), sharp, updates), state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def multi_gossip(topology: Topology, *, axis_name: str, local_steps: int = 1, gossip_steps: int = 1
                 ) -> optax.GradientTransformation:
  r"""Q gossip steps after every K local steps: the update that moves x_i to :math:`\sum_j (W^Q)_{ij}(x_j + u_j)`
  on steps K, 2K, ... and to :math:`x_i + u_i` on the others.

  Args:
    topology: the graph (its size must match the axis).
    axis_name: the worker axis.
    local_steps: K >= 1, local steps per communication round.
    gossip_steps: Q >= 1, gossip steps per round (Q model transfers per neighbour).

  Returns:
    A ``GradientTransformation`` (needs ``params``); its state counts the local steps.
  """
  k = checks.positive_int(local_steps, 'multi_gossip: local_steps')
  q = checks.positive_int(gossip_steps, 'multi_gossip: gossip_steps')

  def init_fn(params):
    del params
    return axis.varying(MultiGossipState(jnp.zeros([], jnp.int32)), axis_name)

  def update_fn(updates, state, params=None):
    need_params(params, 'multi_gossip')
    count = state.count + 1
    half = jax.tree.map(lambda p, u: p + u.astype(p.dtype), params, updates)

    def mix(tree):
      for _ in range(q):
        tree = gossip(tree, topology, axis_name)
      return axis.varying(tree, axis_name)

    # Every worker's count is the same, so all take the same branch and the collectives in ``mix`` match.
    new = mix(half) if k == 1 else lax.cond(count % k == 0, mix, lambda t: axis.varying(t, axis_name), half)
    out = jax.tree.map(lambda m, p: (m - p).astype(p.dtype), new, params)
    return out, axis.varying(MultiGossipState(count), axis_name)

  return optax.GradientTransformation(init_fn, update_fn)


def dfedsam(learning_rate: optax.ScalarOrSchedule, topology: Topology, *, axis_name: str, rho: float = 0.05,
            local_steps: int = 1, gossip_steps: int = 1, momentum: float | None = None
            ) -> optax.GradientTransformationExtraArgs:
  r"""DFedSAM (``gossip_steps = 1``) and DFedSAM-MGS (``gossip_steps = Q > 1``), one call per local step.

  .. math:: y \leftarrow y - \eta\,\nabla f_i(y + \rho\, g/\lVert g\rVert), \qquad
     x_i \leftarrow \textstyle\sum_j (W^Q)_{ij}\, y_j \ \text{after every K-th step}

  ``optax.chain(sam_gradient(rho), optax.sgd(learning_rate, momentum), multi_gossip(topology, K, Q))``; the
  momentum, if any, is local (the paper's local optimizer is plain SGD: ``momentum=None``).

  Args:
    learning_rate: the local step size eta (or schedule).
    topology: the communication graph (doubly stochastic W: Metropolis-Hastings weights, or consensus drifts).
    axis_name: the worker axis.
    rho: the SAM radius; 0 gives DFedAvg (K > 1) or D-SGD (K = 1).
    local_steps: K, local steps per round.
    gossip_steps: Q, gossip steps per round.
    momentum: optional local heavy-ball momentum (optax.sgd convention).

  Returns:
    A ``GradientTransformationExtraArgs`` for one worker: ``update(grads, state, params, loss_fn=...)``.
  """
  return sgd_then('dfedsam', learning_rate, momentum,
                  lambda: multi_gossip(topology, axis_name=axis_name, local_steps=local_steps,
                                       gossip_steps=gossip_steps),
                  gradient=lambda: sam_gradient(rho))
