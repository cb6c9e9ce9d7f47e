"""Heterogeneous replicas on a (replica x stage) mesh, trained with SparseLoCo across replicas.

The setting of Obeidi et al., Heterogeneous Low-Bandwidth Pre-Training of LLMs (arXiv 2601.02360): R replicas of
one model train with SparseLoCo (H inner steps of any optax optimizer, then an outer step on the error-fed,
top-k, 2-bit pseudo-gradients averaged over replicas). A replica is one of two kinds:

- *full*: one high-bandwidth cluster; its stages exchange full activations (uncompressed pipeline parallelism,
  which equals the unsplit model to float precision: ``tests/decentral/pipeline/test_schedule.py``). It keeps the
  same (replica x stage) layout as the pipelined replicas rather than the whole model on one position, so the
  outer step reduces stage by stage for both kinds; the numbers are those of the unsplit model either way;
- *pipelined*: low-bandwidth participants each holding one stage; the activations and activation gradients
  between their stages go through a compressed link (a subspace projection, :mod:`decentral.pipeline.links`).

Worker (r, s) of the mesh is stage s of replica r and holds the parameters of stage s, so the outer step is
SparseLoCo on the replica axis applied per stage (:func:`decentral.sparseloco`, reused as it is): every
(replica, stage) keeps its own error-feedback buffer, the trap the notes point at, and sends only its stage's
compressed pseudo-gradient. Per step and worker:

    loss_r, g_{r,s} = pipelined value and gradient of replica r (link: compressed if c_r, identity otherwise)
    theta_{r,s} <- SparseLoCo_r(InnerOpt, g_{r,s})     (outer step every H steps, mean over r at each s)

with c_r = pipelined_r (selective compression, the paper's heterogeneous setting) or c_r = True for every
replica (``compress_all``, the baseline it is compared with). The subspace constraint a lossless compressed link
relies on is a property of the weights, and the outer average of constrained and unconstrained replicas leaves
it; reconciling them (constrain every replica, or project the global model after the outer step or on receipt)
is the caller's choice, made in ``inner`` (an optax chain) or on the returned parameters
(:mod:`decentral.pipeline.subspace` has the projections; ``experiments/lib/pipeline.py`` the conditions run).

Bytes: ``state.pipeline`` (a :class:`decentral.ledger.CommStats`) holds what this stage sent to its neighbours in
the latest step (M forward codes unless it is the last stage, M backward codes unless it is the first), and the
SparseLoCo state's ``comm`` what it sent to the other replicas; ``decentral.ledger.sent_bytes`` of the whole state
adds both. In this one SPMD program a replica of either kind runs both links and keeps its own
(``links.send_either``); the ledger counts only its own link's codes.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from decentral import axis, checks, ledger
from decentral.local_sgd.sparse import sparseloco
from decentral.pipeline import links as links_lib
from decentral.pipeline import schedule

PyTree = Any


class ReplicaState(NamedTuple):
  """State of worker (r, s): its SparseLoCo state and the bytes it sent between stages in the latest step."""

  outer: optax.OptState
  pipeline: ledger.CommStats


class Replicas(NamedTuple):
  """``init(params) -> state`` and ``step(params, state, inputs, targets) -> (params, state, loss)``, per worker."""

  init: Callable[[PyTree], ReplicaState]
  step: Callable[..., tuple[PyTree, ReplicaState, jax.Array]]
  compressed: tuple[bool, ...]


def compressed_replicas(pipelined: Sequence[bool], compress_all: bool = False) -> tuple[bool, ...]:
  """Which replicas compress: the pipelined ones (selective), or all of them (``compress_all``)."""
  if not len(pipelined):
    raise ValueError('decentral.pipeline.heterogeneous: pipelined must name at least one replica')
  return tuple(bool(p) or bool(compress_all) for p in pipelined)


def stage_nbytes(link: links_lib.Link, h, ctx, *, num_stages: int, num_microbatches: int) -> np.ndarray:
  """Bytes each stage sends per pipelined step through ``link``: M forward codes from stages 0..S-2 and M backward
  codes from stages 1..S-1 (int array of length S)."""
  fwd, bwd = links_lib.message_nbytes(link, h, ctx)
  s = np.arange(num_stages)
  return num_microbatches * (fwd * (s < num_stages - 1) + bwd * (s > 0)).astype(np.int64)


def heterogeneous_sparseloco(stage_fn: schedule.StageFn, first_fn: Callable[[PyTree, PyTree], jax.Array],
                             last_fn: Callable[[PyTree, jax.Array, PyTree], jax.Array], *,
                             inner: optax.GradientTransformation, sync_every: int, link: links_lib.Link,
                             pipelined: Sequence[bool], compress_all: bool = False, num_microbatches: int = 1,
                             replica_axis: str = 'replica', stage_axis: str = 'stage', learning_rate: float = 1.0,
                             decay: float = 0.95, chunk: int = 64, k: int = 64, bins: int = 4,
                             range_sigmas: float = 6.0) -> Replicas:
  """Full and pipelined-compressed replicas trained with SparseLoCo across replicas, for worker (r, s).

  Args:
    stage_fn, first_fn, last_fn: the model split into stages (see :func:`decentral.pipeline.gpipe`).
    inner: the inner optimizer of every (replica, stage) (AdamW in the paper); any optax transform.
    sync_every: H, inner steps between outer steps.
    link: the compressed link of the replicas that compress (the others send full activations).
    pipelined: one flag per replica: True for a pipelined low-bandwidth replica, False for a full one.
    compress_all: compress every replica's links (the baseline), not only the pipelined ones'.
    num_microbatches: M, microbatches per step of the pipeline schedule.
    replica_axis, stage_axis: the mesh's axis names.
    learning_rate, decay, chunk, k, bins, range_sigmas: SparseLoCo's outer step (see :func:`decentral.sparseloco`).

  Returns:
    :class:`Replicas`; run ``step`` with :func:`decentral.pipeline.mesh.run` (inputs and targets stacked
    [R, S, M, ...], the same microbatches at every stage of a replica).
  """
  flags = compressed_replicas(pipelined, compress_all)
  checks.positive_int(num_microbatches, 'num_microbatches')
  tx = sparseloco(inner, sync_every=sync_every, learning_rate=learning_rate, decay=decay, chunk=chunk, k=k,
                  bins=bins, range_sigmas=range_sigmas, axis_name=replica_axis)
  full = links_lib.identity()
  uniform = all(flags) or not any(flags)  # one kind of link: no need to run both

  def init(params):
    stats = axis.varying(axis.varying(ledger.init_stats(), replica_axis), stage_axis)  # per worker, as step's
    return ReplicaState(tx.init(params), stats)

  def step(params, state, inputs, targets):
    if axis.axis_size(replica_axis) != len(flags):
      raise ValueError(f'decentral.pipeline.heterogeneous: {len(flags)} replica flags for a replica axis of size '
                       f'{axis.axis_size(replica_axis)}')
    r, s = axis.worker_index(replica_axis), axis.worker_index(stage_axis)
    flag = jnp.asarray(flags)[r]
    kind = dict(link=link if flags[0] else full) if uniform else dict(choose=(flag, (full, link)))
    pipe = schedule.gpipe(stage_fn, first_fn, last_fn, num_microbatches=num_microbatches, axis_name=stage_axis,
                          **kind)
    loss, grads = schedule.value_and_grad(pipe, stage_axis)(params, inputs, targets)
    updates, outer = tx.update(grads, state.outer, params)
    params = optax.apply_updates(params, updates)
    ctx = jax.tree.map(lambda x: x[0], inputs)  # one microbatch's side information
    h = jax.eval_shape(first_fn, params, ctx)
    sizes = [stage_nbytes(one, h, ctx, num_stages=axis.axis_size(stage_axis), num_microbatches=num_microbatches)
             for one in (full, link)]
    sent = jnp.where(flag, jnp.asarray(sizes[1], jnp.int32)[s], jnp.asarray(sizes[0], jnp.int32)[s])
    return params, ReplicaState(outer, ledger.step_stats(state.pipeline, sent)), loss

  return Replicas(init, step, flags)
