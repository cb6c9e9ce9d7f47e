"""Subspace-compressed pipeline links: the residual stream kept in (fixed anchor) + span(U), k numbers per token.

Subspace networks (Ramasinghe et al., arXiv 2506.01260; the pipelined replicas of Obeidi et al., arXiv 2601.02360).
A transformer's residual stream is a sum of writes: the embedding, then every attention out-projection and MLP
down-projection (with their biases). Split the embedding into a fixed, untrained, high-rank token table A (the
*anchor*, recomputable from the token ids on every stage) and trainable writes, and constrain every trainable
write to span(U), U in R^{d x k} with orthonormal columns. Then after any block

    h = A[x] + U c,        c = U^T (h - A[x])  in R^k,

so a stage sends c (k numbers per token) and the next stage rebuilds h exactly from (c, x). Backward, decode's
vector-Jacobian product is the projected activation gradient c_bar = U^T h_bar (k per token), and nothing is
lost: inside a stage every parameter reaches the stage output only through writes in span(U), so the (1 - U U^T)
part of h_bar reaches no parameter gradient but a write's own, and that one only outside span(U), which the
constrained optimizer projects away (:func:`constrained`). Without the constraint the same message is a lossy
rank-k projection.

Conventions. The authors' code was read (PluralisResearch/ProtocolNanoGPT ``train_gpt_ssn.py``, their reference
"ReparamSSN" of 2506.01260, and PluralisResearch/node0, the Protocol Models training code); the body of either
paper was not readable here, so where they might say otherwise it is unchecked:

- **U is fixed**: one seed-derived random orthonormal basis (QR of a Gaussian), the same on every stage and every
  replica (``ssn_setup`` in ProtocolNanoGPT; node0 loads one fixed basis ``rcv``). Updating U during training
  (the predecessor's other option, as the brief has it) is not implemented: its rule was not verified.
- **The anchor** is a fixed N(0, 1) token table (both codes). Positions here are a learned table, a write, so it
  is constrained too (the authors use rotary positions, which never enter the stream).
- **The constraint is kept by projection** (node0's ``ss_regularize``: W <- U U^T W on every write after each
  update): full-size weights, projected; :func:`constrain`, :func:`subspace_constraint`, :func:`constrained`. The
  other parametrisation, trainable coordinates (k x in) expanded through U (ProtocolNanoGPT's ``SubspaceLinear``),
  is the same model under SGD but not under Adam; it is not implemented.
- **The last stage is free** (``constrain_last_stage=False``): its writes happen after the last link, as in both
  codes (ProtocolNanoGPT's last block and node0's last two layers are full rank).
- **SparseLoCo's outer step** (the heterogeneous replicas of 2601.02360, which studies "a number of adaptations";
  which one it kept is not verified here). Two facts force one: an average of constrained and unconstrained
  replicas leaves span(U), and so does SparseLoCo's top-k even when every replica is constrained (the top-k
  entries of a matrix whose rows lie in span(U) do not). What ``experiments/lib/pipeline.py`` does: a compressing
  replica projects its weights after every update, the received global model included (:func:`constrain_stage`
  on its worker, node0's projection after each update); full replicas and the global model are not projected.
  The other option, projecting the global model after each outer step (every replica constrained), is one
  :func:`constrain` of SparseLoCo's anchor away and not run here.

>>> import jax, jax.numpy as jnp
>>> U = random_basis(jax.random.key(0), 8, 2)
>>> bool(jnp.allclose(U.T @ U, jnp.eye(2), atol=1e-6))
True
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from decentral.pipeline import links
from decentral.pipeline.links import Link
from decentral.pipeline.transformer import RESIDUAL_WRITERS

PyTree = Any


def random_basis(key: jax.Array, d_model: int, k: int, dtype=None) -> jax.Array:
  """A random d x k matrix with orthonormal columns (Q of a Gaussian's QR), the fixed subspace U."""
  if not 1 <= k <= d_model:
    raise ValueError(f'random_basis: k must be in [1, d_model={d_model}], got {k}')
  q, _ = jnp.linalg.qr(jax.random.normal(key, (d_model, k)))
  return q.astype(dtype or jnp.zeros(()).dtype)


def anchor_embedding(key: jax.Array, vocab_size: int, d_model: int, dtype=None) -> jax.Array:
  """The fixed high-rank token table A, N(0, 1) entries (never trained; every stage can rebuild A[x])."""
  return jax.random.normal(key, (vocab_size, d_model), dtype or jnp.zeros(()).dtype)


def project(x: jax.Array, basis: jax.Array) -> jax.Array:
  """x U U^T: the last axis of x projected onto span(U) (a write's rows, so its outputs, land in span(U))."""
  basis = basis.astype(x.dtype)
  return (x @ basis) @ basis.T


def _check_basis(basis, where):
  if basis.ndim != 2 or basis.shape[1] > basis.shape[0]:
    raise ValueError(f'{where}: basis must be a d x k matrix with k <= d, got shape {basis.shape}')


def _map_writers(fn: Callable, tree: PyTree, constrain_last_stage: bool) -> PyTree:
  """``tree`` (params or updates) with ``fn`` applied to every residual write; the last stage only if asked."""
  out = {name: dict(sub) if isinstance(sub, dict) else sub for name, sub in tree.items()}
  for group, leaf in RESIDUAL_WRITERS:
    x = tree[group][leaf]
    if group == 'stages' and not constrain_last_stage:
      x = x.at[:-1].set(fn(x[:-1]))  # leading axis = stage; the last stage writes after the last link
    else:
      x = fn(x)
    out[group][leaf] = x
  return out


def constrain(params: PyTree, basis: jax.Array, *, constrain_last_stage: bool = False) -> PyTree:
  """The parameters with every residual write projected onto span(U) (node0's ``ss_regularize``).

  Writes (``decentral.pipeline.transformer.RESIDUAL_WRITERS``): the token and position tables, the attention
  out-projections and MLP down-projections with their biases. Idempotent; the other leaves are untouched. Also
  what a compressing replica applies to a received global model, or what would project SparseLoCo's global model.
  """
  _check_basis(basis, 'constrain')
  return _map_writers(lambda x: project(x, basis), params, constrain_last_stage)


def constrain_stage(stage_tree: PyTree, basis: jax.Array, is_last: bool | jax.Array, *,
                    constrain_last_stage: bool = False) -> PyTree:
  """:func:`constrain` for one stage's tree of :func:`decentral.pipeline.transformer.to_stages` (a worker of a
  pipeline mesh): its embedding copy and, unless it is the last stage (``is_last``, may be traced), its writes."""
  _check_basis(basis, 'constrain_stage')
  free = jnp.logical_and(is_last, not constrain_last_stage)
  out = {name: dict(sub) if isinstance(sub, dict) else sub for name, sub in stage_tree.items()}
  for group, leaf in RESIDUAL_WRITERS:
    x = stage_tree[group][leaf]
    out[group][leaf] = jnp.where(free, x, project(x, basis)) if group == 'stages' else project(x, basis)
  return out


def constraint_violation(params: PyTree, basis: jax.Array, *, constrain_last_stage: bool = False) -> jax.Array:
  """max |w - w U U^T| over the constrained writes: 0 (to rounding) exactly when the links are lossless."""
  parts = []
  for group, leaf in RESIDUAL_WRITERS:
    x = params[group][leaf]
    x = x[:-1] if group == 'stages' and not constrain_last_stage else x
    parts.append(jnp.max(jnp.abs(x - project(x, basis)), initial=0.0))
  return jnp.max(jnp.stack(parts))


def subspace_constraint(basis: jax.Array, *, constrain_last_stage: bool = False) -> optax.GradientTransformation:
  """Projects the update of every residual write onto span(U), the other leaves unchanged: u_W <- u_W U U^T.

  If W U U^T = W then (W + u_W) U U^T = W + u_W, so chained after an optimizer it keeps a model started with
  :func:`constrain` constrained (AdamW's decoupled weight decay included; Adam's elementwise scaling of a
  projected gradient is not in span(U), so the projection after the optimizer is needed). Chained before, it
  turns a full gradient into the one a pipelined replica receives. Stateless. See :func:`constrained`.
  """
  _check_basis(basis, 'subspace_constraint')

  def update_fn(updates, state, params=None):
    del params
    return _map_writers(lambda x: project(x, basis), updates, constrain_last_stage), state

  return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


def constrained(inner: optax.GradientTransformation, basis: jax.Array, *, constrain_last_stage: bool = False
                ) -> optax.GradientTransformation:
  """``inner`` on the subspace-constrained model: project the write gradients, run ``inner``, project the update.

  Projected-gradient training on {W : W U U^T = W}: the projection after ``inner`` keeps every write in span(U)
  (node0's ``ss_regularize`` after each step; Adam's elementwise scaling leaves the subspace), the one before
  makes the step independent of where the gradient was computed. A compressed pipeline and the unsplit model
  give the same gradients except for the writes before the last link, and those agree once projected (the
  activation gradient crossing a link keeps only U^T h_bar), so both replicas follow one trajectory with this.
  """
  project_writes = subspace_constraint(basis, constrain_last_stage=constrain_last_stage)
  return optax.chain(project_writes, inner, project_writes)


def encode(h: jax.Array, tokens: jax.Array, basis: jax.Array, anchor: jax.Array) -> jax.Array:
  """The message a stage sends: c = U^T (h - A[x]), shape (..., k). Its VJP lifts c_bar to U c_bar."""
  return (h - anchor.astype(h.dtype)[tokens]) @ basis.astype(h.dtype)


def decode(c: jax.Array, tokens: jax.Array, basis: jax.Array, anchor: jax.Array) -> jax.Array:
  """h = A[x] + U c, rebuilt by the receiving stage. Its VJP is the projected gradient c_bar = U^T h_bar."""
  return anchor.astype(c.dtype)[tokens] + c @ basis.astype(c.dtype).T


def subspace_link(basis: jax.Array, anchor: jax.Array) -> Link:
  """The compressed link of one (U, A) pair, for :func:`decentral.pipeline.links.send`.

  Forward it sends c = U^T (h - A[x]) (k numbers per token; ``ctx`` is the microbatch's token ids x, which every
  stage holds, so no id crosses the link); backward the exact transpose, U^T h_bar, and the sender lifts U c_bar.
  Bytes per message each way: k x tokens x element size (the link's dense code).

  Args:
    basis: U (d x k, orthonormal columns), from :func:`random_basis`.
    anchor: A (vocab x d), from :func:`anchor_embedding`; the model must add the same table in its embedding.
  """
  _check_basis(basis, 'subspace_link')
  if anchor.ndim != 2 or anchor.shape[1] != basis.shape[0]:
    raise ValueError(f'subspace_link: anchor must be vocab x {basis.shape[0]}, got shape {anchor.shape}')
  return links.compressed(lambda h, tokens: encode(h, tokens, basis, anchor),
                          lambda c, tokens: decode(c, tokens, basis, anchor), name=f'subspace_k{basis.shape[1]}')
