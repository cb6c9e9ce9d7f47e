"""Centered clipping, CClip (Karimireddy et al. 2021, arXiv 2012.10333): a stateful rule around the last aggregate.

A :class:`decentral.robust.aggregation.StatefulRule`; its state, the centre, is kept in float32 or wider. Each
iteration reads the stack twice, once for the distances to the centre and once for the clipped sum (a fused sum of
the rows, :func:`decentral.robust.passes.weighted_sum`), and writes nothing of its size.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from decentral import checks
from decentral.robust.aggregation import StatefulRule
from decentral.robust.passes import row_sq_distances, weighted_sum
from decentral.stacked import check_f, compute_dtype, num_workers, rows, unrows

def centered_clipping(tau: float = 100.0, iters: int = 1) -> StatefulRule:
  r"""Centered clipping (Karimireddy et al. 2021, arXiv 2012.10333), stateful: the centre is the last aggregate.

  .. math:: v_0 = m, \quad v_{l+1} = v_l + \frac{1}{n}\sum_i (x_i - v_l)\min\Big(1, \frac{\tau}{\|x_i - v_l\|}\Big),
     \quad m \leftarrow v_L

  ByzFL's ``CenteredClipping(m=None, L=1, tau=100.)``: the state starts at zero and the division is by n (every
  worker, faulty or not). A non-finite row contributes 0 (its clipped direction is undefined); an input equal to
  the centre contributes 0 (no division by zero). No ties.

  Args:
    tau: clipping radius, > 0.
    iters: number L of clipping iterations per round, >= 1.

  Returns:
    A :class:`decentral.StatefulRule` whose state (the centre) is stored in float32 or wider.

  >>> import jax.numpy as jnp
  >>> cc = centered_clipping(tau=1.0)
  >>> x = jnp.array([[0.5, 0.], [0., 0.5], [100., 0.]])
  >>> agg, state = cc.apply(x, cc.init(x[0]), f=1, key=None)
  >>> jnp.round(agg, 3)
  Array([0.5  , 0.167], dtype=float32)
  """
  checks.positive_finite(tau, 'centered_clipping: tau')
  checks.positive_int(iters, 'centered_clipping: iters')

  def init(update):
    return jax.tree.map(lambda x: jnp.zeros(jnp.shape(x), compute_dtype(x)), update)

  def apply(stacked, state, *, f=0, key=None):
    del key
    n = num_workers(stacked)
    check_f(f, n, 'centered_clipping')
    rs = rows(stacked)
    v = [jnp.reshape(s, (-1,)).astype(r.dtype) for s, r in zip(jax.tree.leaves(state), rs)]
    for _ in range(iters):
      # A row with a NaN or inf has a non-finite distance (so has a finite row whose squared norm overflows, whose
      # clipping factor tau / inf would be 0 anyway): weight 0.
      sq = sum(row_sq_distances(r, vv) for r, vv in zip(rs, v))
      scale = jnp.where(jnp.isfinite(sq), jnp.minimum(1.0, tau / jnp.sqrt(sq)), 0.0)
      # The barrier keeps XLA from fusing this sum into the next distances, which would redo it for every row.
      v = lax.optimization_barrier([vv + weighted_sum(r, scale, vv) / n for r, vv in zip(rs, v)])
    out = unrows(v, stacked)
    new_state = jax.tree.map(lambda o, s: o.astype(s.dtype), out, state)
    return out, new_state

  return StatefulRule(init, apply)
