"""A microbatched GPipe schedule over a named ``stage`` axis, written once per stage.

Every position s of the axis holds the parameters of stage s. The M microbatches flow through the S stages in
M + S - 1 ticks (a ``lax.scan``): at tick t stage s runs microbatch m = t - s when 0 <= m < M and idles
otherwise, then hands its output to stage s + 1 through a link (:func:`decentral.pipeline.links.send`, one
``lax.ppermute``). The first stage reads its input from the caller's ``first_fn`` (an embedding of token ids),
the last stage scores its output with ``last_fn``. The backward is ``jax.grad`` of the pipelined loss: the
ppermutes transpose to ppermutes the other way, so the activation gradients flow back stage by stage as a
backward pipeline of the same M + S - 1 ticks (GPipe keeps every microbatch's activations for it).

    loss = (1/M) sum_m last_fn(theta_{S-1}, f_{S-1}(... f_1(f_0(first_fn(theta_0, x_m), 0), 1) ...), y_m)
    with f_s(h) = stage_fn(theta_s, h, s)

The bubble: each stage idles in S - 1 of the M + S - 1 ticks of each direction, a fraction (S - 1)/(M + S - 1)
of its time (0.43 for S = 4, M = 4; 0.16 for M = 16); the per-stage busy mask is returned so a run can measure
it (:func:`bubble_fraction` is the closed form). An idle tick skips its work (``lax.cond``) under shard_map, so
the bubble is idle time as on real hardware; under vmap the conditionals become selects and every tick computes.
The ppermute runs at every tick (one SPMD program), but only the M busy ticks of a boundary carry a microbatch;
the bytes of a step are those M messages each way (:func:`decentral.pipeline.heterogeneous.stage_nbytes`).

Constraints: every stage maps activations of one shape and dtype to the same shape and dtype (one ppermute
buffer per boundary); every stage's parameters have the same tree structure (they are stacked over the axis;
give stage-specific parts, such as the embedding on stage 0 and the head on stage S - 1, to every stage and let
``first_fn``/``last_fn`` use the ones of their stage); the microbatches have equal sizes, so the mean of the M
microbatch losses is the full-batch loss.

>>> import jax, jax.numpy as jnp
>>> from decentral import axis
>>> first = lambda p, x: x
>>> stage = lambda p, h, s: h + jnp.tanh(h @ p)
>>> last = lambda p, h, y: jnp.mean((h - y) ** 2)
>>> loss = gpipe(stage, first, last, num_microbatches=2)
>>> params = jnp.stack([0.1 * jnp.eye(3), -0.2 * jnp.eye(3)])        # 2 stages
>>> x, y = jnp.ones((2, 4, 3)), jnp.zeros((2, 4, 3))                # 2 microbatches of 4
>>> grad_fn = value_and_grad(loss)
>>> value, grads = axis.run(grad_fn, 2, axis_name='stage', in_axes=(0, None, None))(params, x, y)
>>> ref_value, ref_grads = jax.value_and_grad(unsplit(stage, first, last))(params, x, y)
>>> bool(jnp.allclose(value, ref_value)) and bool(jnp.allclose(grads, ref_grads, atol=1e-6))
True

Reference: Huang et al., GPipe, arXiv 1811.06965 (fill and drain, re-materialisation not done here).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax import lax

from decentral import axis, checks
from decentral.pipeline import links as links_lib

PyTree = Any
StageFn = Callable[[PyTree, jax.Array, jax.Array], jax.Array]


def bubble_fraction(num_stages: int, num_microbatches: int) -> float:
  """(S - 1)/(M + S - 1): the fraction of its ticks a stage idles in a GPipe fill and drain."""
  s = checks.positive_int(num_stages, 'num_stages')
  m = checks.positive_int(num_microbatches, 'num_microbatches')
  return (s - 1) / (m + s - 1)


def _index(tree, i):
  return jax.tree.map(lambda x: x[i], tree)


def gpipe(stage_fn: StageFn, first_fn: Callable[[PyTree, PyTree], jax.Array],
          last_fn: Callable[[PyTree, jax.Array, PyTree], jax.Array], *, num_microbatches: int,
          axis_name: str = 'stage', link: links_lib.Link | None = None,
          choose: tuple[jax.Array, tuple[links_lib.Link, links_lib.Link]] | None = None
          ) -> Callable[[PyTree, PyTree, PyTree], tuple[jax.Array, jax.Array]]:
  """The pipelined loss for one stage of ``axis_name``: ``share, busy = loss(params, inputs, targets)``.

  Args:
    stage_fn: ``(stage_params, h, stage_index) -> h`` with h of one fixed shape at every stage.
    first_fn: ``(stage_params, x_m) -> h``, the first stage's input from microbatch m's inputs (an embedding).
    last_fn: ``(stage_params, h, y_m) -> scalar``, the last stage's loss on microbatch m (a mean over it).
    num_microbatches: M.
    axis_name: the stage axis; its size is S.
    link: the inter-stage link (:func:`decentral.pipeline.links.identity` when None).
    choose: ``(flag, (link_a, link_b))`` instead of ``link``: this position uses ``link_b`` where the traced
      flag is true (replicas of different kinds in one program; see ``links.send_either``).

  Returns:
    ``loss(params, inputs, targets)`` with inputs and targets holding the M microbatches on their leading axis
    (the same on every stage). It returns this stage's share of the loss (the loss on the last stage, 0 on the
    others; ``lax.psum`` it over the axis for the loss; :func:`value_and_grad` does) and the busy mask, one
    boolean per tick. Differentiate the share: its gradient with respect to each stage's parameters is that
    stage's block of the full gradient.
  """
  m_count = checks.positive_int(num_microbatches, 'num_microbatches')
  if link is not None and choose is not None:
    raise ValueError('decentral.pipeline.gpipe: pass link or choose, not both')
  link = link or links_lib.identity()

  def loss(params, inputs, targets):
    num_stages = axis.axis_size(axis_name)
    s = axis.worker_index(axis_name)
    is_first, is_last = s == 0, s == num_stages - 1

    def transfer(h, ctx_out, ctx_in):
      if choose is None:
        return links_lib.send(link, h, ctx_out, ctx_in, axis_name=axis_name, num_stages=num_stages)
      flag, pair = choose
      return links_lib.send_either(flag, pair, h, ctx_out, ctx_in, axis_name=axis_name, num_stages=num_stages)

    def tick(carry, t):
      inbox, total = carry
      m = t - s
      busy = (m >= 0) & (m < m_count)
      x_m = _index(inputs, jnp.clip(m, 0, m_count - 1))
      y_m = _index(targets, jnp.clip(m, 0, m_count - 1))
      # Conditionals, not masks: under shard_map an idle tick computes nothing (the bubble is idle time, forward
      # and backward); under vmap they become selects. The functions must not use collectives.
      h = lax.cond(is_first & busy, lambda: first_fn(params, x_m), lambda: inbox)
      h = lax.cond(busy, lambda: stage_fn(params, h, s), lambda: h)
      total = total + lax.cond(is_last & busy, lambda: last_fn(params, h, y_m).astype(total.dtype),
                               lambda: jnp.zeros_like(total))
      inbox = transfer(h, x_m, _index(inputs, jnp.clip(m + 1, 0, m_count - 1)))
      return (inbox, total), busy

    # Zeros that vary over every mesh axis the parameters and inputs vary over (a scan carry keeps its type).
    zero = 0 * lax.stop_gradient(first_fn(params, _index(inputs, 0)))
    start = axis.varying((zero, jnp.sum(zero)), axis_name)
    (_, total), busy = lax.scan(tick, start, jnp.arange(m_count + num_stages - 1))
    return total / m_count, busy

  return loss


def value_and_grad(loss: Callable[..., tuple[jax.Array, jax.Array]], axis_name: str = 'stage'
                   ) -> Callable[..., tuple[jax.Array, PyTree]]:
  """``(loss, grads) = f(params, inputs, targets)`` for one stage: the pipelined loss (the same on every stage)
  and this stage's gradient, by a forward pipeline and its transpose."""

  def fn(params, *args):
    (share, _), grads = jax.value_and_grad(loss, has_aux=True)(params, *args)
    return lax.psum(share, axis_name), grads

  return fn


def unsplit(stage_fn: StageFn, first_fn: Callable[[PyTree, PyTree], jax.Array],
            last_fn: Callable[[PyTree, jax.Array, PyTree], jax.Array]) -> Callable[[PyTree, PyTree, PyTree], jax.Array]:
  """The same model run whole on one device: ``loss(stacked_params, inputs, targets)`` with the stages' parameters
  stacked on a leading axis of size S (the reference the pipeline must equal)."""

  def loss(stacked, inputs, targets):
    num_stages = jax.tree.leaves(stacked)[0].shape[0]

    def one(x, y):
      h = first_fn(_index(stacked, 0), x)
      for s in range(num_stages):
        h = stage_fn(_index(stacked, s), h, jnp.asarray(s))
      return last_fn(_index(stacked, num_stages - 1), h, y)

    return jnp.mean(jax.vmap(one)(inputs, targets))

  return loss
