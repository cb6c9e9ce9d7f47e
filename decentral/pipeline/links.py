"""The link between two pipeline stages: what one stage sends the next, forward and backward, and its bytes.

A :class:`Link` is an encode/decode pair. Forward, the sending stage puts ``encode(h, ctx)`` on the wire and the
receiving stage rebuilds ``decode(code, ctx)``; backward, the receiving stage sends the *encoded activation
gradient* and the sending stage lifts it back. :func:`send` is that transfer between stages on a named axis, a
``jax.custom_vjp`` around one ``lax.ppermute`` each way, so both directions move codes, never full activations:

    forward   c = E(h; ctx)        --ppermute s -> s+1-->   h' = D(c; ctx)
    backward  c_g = E_g(g'; ctx)   <--ppermute s+1 -> s--   g  = D_g(c_g; ctx)

By default E_g and D_g are the transposes of D and E (``jax.vjp`` at the forward point), so
c_g = (dD/dc)^T g' is the gradient with respect to the code and g the exact gradient of the composition; for a
projection onto a subspace (E = U^T (.), D = U (.) plus an offset recomputed from ``ctx``) that is U^T g' on the
wire and U (.) at the sender. A link whose encode is not differentiable (a quantiser) passes its own
``grad_encode``/``grad_decode`` (a straight-through lift, say).

``ctx`` is side information every stage already holds for the microbatch in flight (its token ids), so a decoder
can recompute what it need not receive (an embedding shift). Bytes: ``nbytes(code)`` of the code's
``ShapeDtypeStruct`` (its dense size by default); :func:`message_nbytes` gives one message's bytes each way.

>>> import jax.numpy as jnp
>>> h = jax.ShapeDtypeStruct((2, 5, 8), jnp.float32)   # batch 2, 5 tokens, width 8
>>> message_nbytes(identity(), h, None)
(320, 320)
>>> u = jnp.eye(8)[:, :2]                                # a 2-dimensional subspace
>>> link = compressed(lambda h, ctx: h @ u, lambda c, ctx: c @ u.T, name='subspace_k2')
>>> message_nbytes(link, h, None)                       # k x tokens x element size each way
(80, 80)
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

PyTree = Any


def dense_code_nbytes(code: jax.ShapeDtypeStruct) -> int:
  """Bytes of a code sent as it is: its size times its element size."""
  return int(np.prod(code.shape, dtype=np.int64)) * np.dtype(code.dtype).itemsize


class Link(NamedTuple):
  """An inter-stage link: ``encode(h, ctx) -> code``, ``decode(code, ctx) -> h``, ``nbytes(code_struct) -> int``.

  ``grad_encode(g, ctx)`` and ``grad_decode(code, ctx)`` are the backward pair (None: the transposes of decode and
  encode, which makes :func:`send` differentiate exactly); ``grad_nbytes`` the bytes of a backward code (None:
  ``nbytes``).
  """

  encode: Callable[[jax.Array, Any], jax.Array]
  decode: Callable[[jax.Array, Any], jax.Array]
  nbytes: Callable[[jax.ShapeDtypeStruct], int] = dense_code_nbytes
  grad_encode: Callable[[jax.Array, Any], jax.Array] | None = None
  grad_decode: Callable[[jax.Array, Any], jax.Array] | None = None
  grad_nbytes: Callable[[jax.ShapeDtypeStruct], int] | None = None
  name: str = 'link'


def identity() -> Link:
  """Full activations each way (uncompressed pipeline parallelism)."""
  return Link(lambda h, ctx: h, lambda c, ctx: c, name='identity')


def compressed(encode: Callable[[jax.Array, Any], jax.Array], decode: Callable[[jax.Array, Any], jax.Array], *,
               nbytes: Callable[[jax.ShapeDtypeStruct], int] = dense_code_nbytes,
               grad_encode: Callable[[jax.Array, Any], jax.Array] | None = None,
               grad_decode: Callable[[jax.Array, Any], jax.Array] | None = None,
               grad_nbytes: Callable[[jax.ShapeDtypeStruct], int] | None = None, name: str = 'compressed') -> Link:
  """A link that sends ``encode(h, ctx)`` forward and the encoded activation gradient backward (see module doc).

  Args:
    encode: (activation, ctx) -> code, at the sending stage.
    decode: (code, ctx) -> activation, at the receiving stage.
    nbytes: bytes of a forward code from its ``ShapeDtypeStruct`` (dense by default).
    grad_encode, grad_decode: the backward pair; None for the exact transposes of ``decode`` and ``encode``.
    grad_nbytes: bytes of a backward code (``nbytes`` when None).
    name: for tables and errors.
  """
  for arg, value in (('encode', encode), ('decode', decode)):
    if not callable(value):
      raise ValueError(f'decentral.pipeline.compressed: {arg} must be callable, got {value!r}')
  return Link(encode, decode, nbytes, grad_encode, grad_decode, grad_nbytes, name)


def forward_perm(num_stages: int) -> list[tuple[int, int]]:
  """Stage s sends to stage s + 1, cyclically: vmap's ppermute takes whole permutations only, so the last stage
  also sends to the first, which ignores it (its input comes from ``first_fn``; its zero cotangent goes back)."""
  return [(s, (s + 1) % num_stages) for s in range(num_stages)]


def send(link: Link, h: jax.Array, ctx_out: PyTree, ctx_in: PyTree, *, axis_name: str, num_stages: int
         ) -> jax.Array:
  """Passes ``h`` from every stage s to stage s + 1 through ``link``; returns what this stage receives.

  ``ctx_out`` is the side information of the microbatch this stage sends, ``ctx_in`` of the one it receives.
  What the first stage receives (from the last, :func:`forward_perm`) must be ignored. Differentiating sends the
  encoded activation gradient back from s + 1 to s (a ``lax.ppermute`` the other way), so jax.grad of a pipelined
  loss is a backward pipeline.
  """
  perm = forward_perm(num_stages)
  reverse = [(j, i) for i, j in perm]
  grad_encode, grad_decode = link.grad_encode, link.grad_decode

  @jax.custom_vjp
  def transfer(h, ctx_out, ctx_in):
    return link.decode(lax.ppermute(link.encode(h, ctx_out), axis_name, perm), ctx_in)

  def transfer_fwd(h, ctx_out, ctx_in):
    code = lax.ppermute(link.encode(h, ctx_out), axis_name, perm)
    return link.decode(code, ctx_in), (h, code, ctx_out, ctx_in)

  def transfer_bwd(res, g):
    h, code, ctx_out, ctx_in = res
    if grad_encode is None:  # the transpose of decode at the received code: the gradient w.r.t. the code
      _, pullback = jax.vjp(lambda c: link.decode(c, ctx_in), code)
      code_g = pullback(g)[0]
    else:
      code_g = grad_encode(g, ctx_in)
    code_g = lax.ppermute(code_g, axis_name, reverse)
    if grad_decode is None:
      _, pullback = jax.vjp(lambda x: link.encode(x, ctx_out), h)
      g_h = pullback(code_g)[0]
    else:
      g_h = grad_decode(code_g, ctx_out)
    return g_h, _zeros_like_ctx(ctx_out), _zeros_like_ctx(ctx_in)

  transfer.defvjp(transfer_fwd, transfer_bwd)
  return transfer(h, ctx_out, ctx_in)


def _zeros_like_ctx(ctx):
  """Zero cotangents for the side information (float0 for integer leaves such as token ids)."""
  def zero(x):
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.inexact):
      return jnp.zeros_like(x)
    return np.zeros(x.shape, jax.dtypes.float0)
  return jax.tree.map(zero, ctx)


def send_either(flag: jax.Array, links: tuple[Link, Link], h: jax.Array, ctx_out: PyTree, ctx_in: PyTree, *,
                axis_name: str, num_stages: int) -> jax.Array:
  """:func:`send` through ``links[1]`` where the traced ``flag`` is true and ``links[0]`` elsewhere.

  For one program on a mesh whose replicas use different links (heterogeneous replicas): every replica runs
  both transfers and keeps its own, so the numbers are those of each replica alone; what a replica *sends* is
  only its own link's code (:func:`message_nbytes` of that link), which is what the ledger counts.
  """
  a = send(links[0], h, ctx_out, ctx_in, axis_name=axis_name, num_stages=num_stages)
  b = send(links[1], h, ctx_out, ctx_in, axis_name=axis_name, num_stages=num_stages)
  return jnp.where(flag, b, a)


def message_nbytes(link: Link, h: jax.ShapeDtypeStruct | jax.Array, ctx: PyTree) -> tuple[int, int]:
  """Bytes of one message of ``link`` for an activation like ``h``: (forward code, backward code).

  The forward code's shape comes from ``encode`` (``jax.eval_shape``), the backward one from ``grad_encode``
  (or, by default, the code's own shape: the gradient with respect to the code).
  """
  h = jax.ShapeDtypeStruct(np.shape(h), h.dtype)
  code = jax.eval_shape(link.encode, h, ctx)
  back = code if link.grad_encode is None else jax.eval_shape(link.grad_encode, h, ctx)
  return int(link.nbytes(code)), int((link.grad_nbytes or link.nbytes)(back))

