"""Just One Byte: decentralised zeroth-order training where each worker sends one byte per perturbation.

Per step t, worker m draws z_{m,t} from a seed derived from (m, t) alone, computes the SPSA projected gradient
p_m = (L_m(theta + eps z_{m,t}) - L_m(theta - eps z_{m,t})) / (2 eps) on its own data
(:func:`optim.primitives.spsa.spsa_projected_gradient`), quantises it to one int8 and sends that byte. Every
worker receives the n bytes, regenerates every z_{m,t} from the (m, t) seeds and applies the same update::

    theta <- theta - eta (1 / |A_t|) sum_{m in A_t} p^_m z_{m,t},

where A_t is the set of workers present at step t, so all replicas stay identical without ever exchanging a
model. Workers may join and leave: pass ``active`` per worker and step; an absent worker sends nothing and its
slot is left out of the average (a returning worker is identical to the others since everyone applied the same
updates, which is what JOB's newcomer gets by downloading the model from a peer).

>>> import jax, jax.numpy as jnp, optax
>>> from decentral import axis
>>> tx = just_one_byte(0.1, epsilon=1e-3, scale=0.05, axis_name='workers')
>>> def step(p, c):
...   s = tx.init(p)
...   u, s = tx.update(p, s, p, loss_fn=lambda q: jnp.vdot(c, q))  # the gradient of worker m is c_m
...   return u, s.comm.sent
>>> u, sent = axis.run(step, 4)(jnp.zeros((4, 3)), jnp.ones((4, 3)))
>>> sent.tolist(), bool(jnp.all(u == u[0]))  # one byte per worker; every replica gets the same update
([1, 1, 1, 1], True)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from decentral import axis, checks, ledger
from optim import checks as optim_checks
from optim.primitives import spsa as zo

PyTree = Any


class JustOneByteState(NamedTuple):
  count: jax.Array   # step t (int32)
  key: jax.Array     # the shared seed's key; directions come from fold_in(.., worker, step, sample)
  comm: ledger.CommStats


def perturbation(key: jax.Array, worker: int | jax.Array, step: int | jax.Array, params: PyTree,
                 sample: int | jax.Array = 0) -> PyTree:
  """z_{m,t,k}: the direction worker m uses at step t (k-th sample), regenerable by anyone from (m, t, k).

  ``gaussian_direction(fold_in(fold_in(fold_in(fold_in(key, 0), m), t), k), params)``.
  """
  k = jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(key, 0), worker), step),
                         sample)
  return zo.gaussian_direction(k, params)


def _quantise(p, scale, key):
  """p -> int8 code round(p / scale), stochastically rounded (unbiased inside the range) when ``key``."""
  y = p / scale
  if key is not None:
    y = jnp.floor(y) + (jax.random.uniform(key, y.shape) < y - jnp.floor(y))
  else:
    y = jnp.round(y)
  return jnp.clip(y, -127, 127).astype(jnp.int8)


def just_one_byte(learning_rate: float, *, epsilon: float = 1e-3, scale: float = 1e-2,
                  num_perturbations: int = 1, stochastic_rounding: bool = True,
                  axis_name: str | None = 'workers', seed: int = 0) -> optax.GradientTransformationExtraArgs:
  """Just One Byte (JOB): shared-randomness SPSA, one int8 projected gradient per worker and perturbation.

  ``update(updates, state, params, *, loss_fn, active=True)``: ``updates`` is ignored (no gradient is used);
  ``loss_fn(params)`` is this worker's loss on its batch; ``active`` says whether this worker takes part in
  this step. The returned update is ``-eta (1/(K |A|)) sum_{m in A} sum_k scale q_{m,k} z_{m,t,k}``, the same on
  every worker.

  Args:
    learning_rate: eta.
    epsilon: the SPSA perturbation size.
    scale: the value of one int8 step: p is sent as q = round(p / scale) clipped to [-127, 127], so
      ``|p|`` up to 127 scale is representable. It is a shared hyperparameter (no per-message scale is sent).
    num_perturbations: K directions per worker and step (JOB's gradient accumulation), K bytes sent.
    stochastic_rounding: round q stochastically (unbiased where unclipped) rather than to nearest.
    axis_name: the worker axis (None: one worker).
    seed: the shared seed every worker regenerates the directions from.

  Returns:
    A ``GradientTransformationExtraArgs`` (state :class:`JustOneByteState`; ``comm.sent`` = K bytes, 0 when
    inactive).

  Reference: Zelikman et al., Just One Byte (per gradient), arXiv 2306.10015. Convention: the paper's update
  theta <- theta - eta p z; the authors' code applies theta <- theta - eta eps p z (an extra eps, i.e.
  ``learning_rate = eta_code * eps`` here) and averages over all samples received; the one-byte encoding is
  not in their code (it sends floats), so the fixed-scale int8 here is our choice.
  """
  for name, v in (('learning_rate', learning_rate), ('epsilon', epsilon), ('scale', scale)):
    checks.positive_finite(v, name)
  kk = checks.positive_int(num_perturbations, 'num_perturbations')

  def init_fn(params):
    del params
    state = JustOneByteState(jnp.zeros([], jnp.int32), jax.random.key(seed), ledger.init_stats())
    return axis.varying(state, axis_name)

  def update_fn(updates, state, params=None, *, loss_fn=None, active=True, **extra):
    del extra
    if params is None or loss_fn is None:
      raise ValueError('just_one_byte needs params and loss_fn: update(updates, state, params, loss_fn=...)')
    # The updates are not used, but a tree unlike the parameters is a caller's mistake: say so, never ignore it.
    if updates is not None:
      optim_checks.same_structure(updates, params, 'just_one_byte updates')
    del updates
    me = 0 if axis_name is None else lax.axis_index(axis_name)
    t = state.count
    ps = jnp.stack([zo.spsa_projected_gradient(loss_fn, params, perturbation(state.key, me, t, params, k),
                                               epsilon) for k in range(kk)])
    round_key = None
    if stochastic_rounding:
      round_key = jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(state.key, 1), me), t)
    q = _quantise(ps, scale, round_key)
    active = jnp.asarray(active, bool)
    if axis_name is None:
      all_q, all_active = q[None], active[None]
    else:
      all_q, all_active = lax.all_gather(q, axis_name), lax.all_gather(active, axis_name)
    n_active = jnp.sum(all_active)
    coef = (all_q.astype(jnp.float32) * scale * all_active[:, None]
            / (kk * jnp.maximum(n_active, 1)).astype(jnp.float32))
    n = all_q.shape[0]

    def add(i, acc):
      m, k = i // kk, i % kk
      z = perturbation(state.key, m, t, params, k)
      return jax.tree.map(lambda a, zz: a + coef[m, k] * zz, acc, z)

    zero = axis.varying(jax.tree.map(lambda x: jnp.zeros(jnp.shape(x), jnp.float32), params), axis_name)
    direction = lax.fori_loop(0, n * kk, add, zero)
    out = jax.tree.map(lambda d, x: (-learning_rate * d).astype(x.dtype), direction, params)
    comm = ledger.step_stats(state.comm, kk, active)
    return out, axis.varying(JustOneByteState(t + 1, state.key, comm), axis_name)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)
