"""Matrix-free curvature products on parameter pytrees: Hessian-, Gauss-Newton-vector products, per-example grads.

Every function here works on arbitrary pytrees and is jit-able. The closures returned by
:func:`hessian_matvec` and :func:`gauss_newton_matvec` map a pytree shaped like ``params`` to one of the same
shape, which is the operator interface that :mod:`optim.estimators` and :mod:`optim.lanczos` consume.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
import numpy as np

PyTree = Any
Matvec = Callable[[PyTree], PyTree]

# Jitted forms of the products, one per loss function ``f``, so that calls from eager code (a training loop, a
# notebook) compile once per input shape and never retrace; weak keys let an entry go with its function.
_JITTED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _eager_arrays(*trees: Any) -> bool:
  """Whether every leaf is a concrete array: then the jitted products apply. Tracers (the caller is jitting) and
  Python values (which ``f`` may use as static settings) keep the inline path."""
  return all(isinstance(leaf, (jax.Array, np.ndarray)) and not isinstance(leaf, jax.core.Tracer)
             for leaf in jax.tree.leaves(trees))


def _grad_at(f: Callable[..., jax.Array], args: tuple) -> Callable[[PyTree], PyTree]:
  return lambda p: jax.grad(f)(p, *args)


def _jitted(f: Callable[..., jax.Array]) -> tuple[Callable, Callable]:
  """``(hvp, linearise)`` of ``f`` under ``jax.jit``, built once per ``f`` (a fresh pair if ``f`` has no weakref)."""
  try:
    return _JITTED[f]
  except (KeyError, TypeError):
    pass
  pair = (jax.jit(lambda params, v, *args: jax.jvp(_grad_at(f, args), (params,), (v,))[1]),
          jax.jit(lambda params, *args: jax.linearize(_grad_at(f, args), params)[1]))
  try:
    _JITTED[f] = pair
  except TypeError:
    pass
  return pair


@jax.jit
def _apply_linear(linear_fn: Callable[[PyTree], PyTree], v: PyTree) -> PyTree:
  # ``linear_fn`` is a jax.tree_util.Partial: its residuals are leaves (arguments) and its jaxpr, which the
  # jitted linearisation returns unchanged on every cache hit, is static; so new points and new vectors reuse one
  # compilation.
  return linear_fn(v)


def hvp(f: Callable[..., jax.Array], params: PyTree, v: PyTree, *args: Any) -> PyTree:
  """Hessian-vector product by forward-over-reverse differentiation.

  Computes ``H v`` with ``H = d^2 f(params, *args) / d params^2`` as the directional derivative of the
  gradient, ``jax.jvp(jax.grad(f), (params,), (v,))``: one forward and one backward pass, never forming ``H``.

  Args:
    f: scalar function ``f(params, *args)``.
    params: point at which the Hessian is taken (any pytree).
    v: direction, a pytree with the structure of ``params``.
    *args: extra arguments of ``f`` (data, targets), held fixed.

  Returns:
    ``H v``, a pytree with the structure of ``params``.

  Example:
    >>> import jax.numpy as jnp
    >>> from optim import hvp
    >>> f = lambda p: jnp.sum(p['w'] ** 3) + p['b'] ** 2
    >>> out = hvp(f, {'w': jnp.array([1.0, 2.0]), 'b': 3.0}, {'w': jnp.ones(2), 'b': 1.0})
    >>> out['w'].tolist(), float(out['b'])
    ([6.0, 12.0], 2.0)

  Called outside ``jax.jit`` with array arguments it runs a jitted product compiled once per ``f`` and input
  shapes (no retrace for new ``params``, ``v`` or data of the same shapes; pass the same function object, not a
  fresh lambda per call); under a trace, or with Python values among the arguments, it is inlined.

  See PyHessian (arXiv 1912.07145) and Pearlmutter (1994) for the R-operator this implements.
  """
  if not _eager_arrays(params, v, args):
    return jax.jvp(_grad_at(f, args), (params,), (v,))[1]
  return _jitted(f)[0](params, v, *args)


def hessian_matvec(f: Callable[..., jax.Array], params: PyTree, *args: Any) -> Matvec:
  """Returns the closure ``v -> H v`` for the Hessian of ``f`` at ``params``.

  The gradient is linearised once (``jax.linearize``), so repeated products, as in Lanczos or Hutchinson,
  reuse the stored forward/backward residuals instead of recomputing them (PyHessian's stored graph); the
  closure is linear in ``v``. Outside ``jax.jit``, with array arguments, both the linearisation and the products
  are jitted, once per ``f`` and input shapes: a new point, new data of the same shapes or a new ``v`` never
  retrace (pass the same function object, not a fresh lambda per call).

  Args:
    f: scalar function ``f(params, *args)``.
    params: point at which the Hessian is taken.
    *args: extra arguments of ``f``, held fixed.

  Returns:
    A function mapping a pytree shaped like ``params`` to ``H v`` of the same shape.

  Example:
    >>> import jax.numpy as jnp
    >>> from optim import hessian_matvec
    >>> x = jnp.array([[1.0, 0.0], [0.0, 2.0]])
    >>> mv = hessian_matvec(lambda w, x: jnp.mean((x @ w) ** 2), jnp.zeros(2), x)
    >>> mv(jnp.array([1.0, 1.0])).tolist()   # (2/N) X^T X v
    [1.0, 4.0]
  """
  if not _eager_arrays(params, args):
    return jax.linearize(_grad_at(f, args), params)[1]
  linear_fn = _jitted(f)[1](params, *args)
  return lambda v: _apply_linear(linear_fn, v)


def gnvp(model_fn: Callable[[PyTree, Any], PyTree], loss_fn: Callable[[PyTree, Any], jax.Array],
         params: PyTree, v: PyTree, inputs: Any, targets: Any) -> PyTree:
  """Generalised Gauss-Newton-vector product ``J^T H_loss J v``.

  With outputs ``z = model_fn(params, inputs)`` and ``J = dz/dparams``, the GGN is ``G = J^T H_z J`` where
  ``H_z = d^2 loss_fn(z, targets) / dz^2``. It drops the term ``sum_i (dl/dz_i) d^2 z_i / dparams^2`` of the
  Hessian and is positive semi-definite whenever the loss is convex in ``z``. Computed as a ``jvp`` through the
  model, a Hessian-vector product of the loss in output space, and a ``vjp`` back.

  Args:
    model_fn: ``model_fn(params, inputs) -> outputs`` (any pytree of outputs).
    loss_fn: scalar ``loss_fn(outputs, targets)``; include any averaging over the batch here.
    params: linearisation point (any pytree).
    v: direction, a pytree with the structure of ``params``.
    inputs: model inputs, held fixed.
    targets: loss targets, held fixed.

  Returns:
    ``G v``, a pytree with the structure of ``params``.

  Example:
    >>> import jax.numpy as jnp
    >>> from optim import gnvp
    >>> model = lambda w, x: jnp.tanh(x @ w)
    >>> loss = lambda z, y: 0.5 * jnp.sum((z - y) ** 2)
    >>> out = gnvp(model, loss, jnp.zeros(2), jnp.array([1.0, 0.0]), jnp.eye(2), jnp.ones(2))
    >>> out.tolist()   # J = I at w = 0 and H_z = I
    [1.0, 0.0]

  See Schraudolph (2002) and Martens (arXiv 1412.1193) for the GGN.
  """
  return gauss_newton_matvec(model_fn, loss_fn, params, inputs, targets)(v)


def gauss_newton_matvec(model_fn: Callable[[PyTree, Any], PyTree], loss_fn: Callable[[PyTree, Any], jax.Array],
                        params: PyTree, inputs: Any, targets: Any) -> Matvec:
  """Returns the closure ``v -> J^T H_loss J v`` (see :func:`gnvp`), linearising the model once.

  Args:
    model_fn: ``model_fn(params, inputs) -> outputs``.
    loss_fn: scalar ``loss_fn(outputs, targets)``.
    params: linearisation point.
    inputs: model inputs, held fixed.
    targets: loss targets, held fixed.

  Returns:
    A function mapping a pytree shaped like ``params`` to ``G v``.

  Example:
    >>> import jax.numpy as jnp
    >>> from optim import gauss_newton_matvec
    >>> mv = gauss_newton_matvec(lambda w, x: x @ w, lambda z, y: jnp.sum((z - y) ** 2),
    ...                          jnp.zeros(2), 3.0 * jnp.eye(2), jnp.zeros(2))
    >>> mv(jnp.array([0.0, 1.0])).tolist()   # 2 X^T X v
    [0.0, 18.0]
  """
  outputs, jvp_fn = jax.linearize(lambda p: model_fn(p, inputs), params)
  # The transpose of the linearised model is the vjp; linear_transpose reuses the residuals of jvp_fn.
  vjp_fn = jax.linear_transpose(jvp_fn, params)
  output_hvp = hessian_matvec(lambda z: loss_fn(z, targets), outputs)

  def matvec(v: PyTree) -> PyTree:
    return vjp_fn(output_hvp(jvp_fn(v)))[0]

  return matvec


def per_example_grads(loss_fn: Callable[[PyTree, Any], jax.Array], params: PyTree, batch: Any) -> PyTree:
  """Gradients of ``loss_fn`` for every example of a batch, by ``vmap`` of ``grad`` over the leading axis.

  Computes ``g_i = d loss_fn(params, batch_i) / d params`` for ``i = 1..B``, where ``batch_i`` is ``batch``
  with the leading axis of every leaf indexed at ``i`` (so ``loss_fn`` sees one example, without a batch axis).

  Args:
    loss_fn: scalar ``loss_fn(params, example)``.
    params: parameters (any pytree), shared across examples.
    batch: pytree whose leaves all share a leading batch axis of size ``B``.

  Returns:
    A pytree like ``params`` whose leaves have an extra leading axis of size ``B``.

  Example:
    >>> import jax.numpy as jnp
    >>> from optim import per_example_grads
    >>> loss = lambda w, ex: (ex['x'] @ w - ex['y']) ** 2
    >>> g = per_example_grads(loss, jnp.zeros(2), {'x': jnp.eye(2), 'y': jnp.array([1.0, 2.0])})
    >>> g.tolist()
    [[-2.0, 0.0], [0.0, -4.0]]
  """
  return jax.vmap(jax.grad(loss_fn), in_axes=(None, 0))(params, batch)


def flatten_matvec(matvec: Matvec, params: PyTree) -> tuple[Callable[[jax.Array], jax.Array], jax.Array,
                                                            Callable[[jax.Array], PyTree]]:
  """Views a pytree operator as one on flat vectors, the form Lanczos and the estimators work in.

  Args:
    matvec: linear map on pytrees shaped like ``params``.
    params: template pytree (its values are only used for shapes and dtypes).

  Returns:
    ``(flat_matvec, flat_params, unravel)``: the operator on 1-D arrays of size ``n`` (the total number of
    parameters), ``params`` raveled, and the inverse of the raveling.

  Example:
    >>> import jax.numpy as jnp
    >>> from optim import flatten_matvec
    >>> mv, flat, unravel = flatten_matvec(lambda p: {'a': 2 * p['a'], 'b': 3 * p['b']},
    ...                                    {'a': jnp.zeros(2), 'b': jnp.zeros(())})
    >>> mv(jnp.ones(3)).tolist()
    [2.0, 2.0, 3.0]
  """
  flat, unravel = ravel_pytree(params)
  return (lambda x: ravel_pytree(matvec(unravel(x)))[0]), flat, unravel


def dense_matrix(matvec: Matvec, params: PyTree) -> jax.Array:
  """Materialises a pytree operator as an ``n x n`` matrix (columns ``A e_j``): an exact oracle for small ``n``.

  Args:
    matvec: linear map on pytrees shaped like ``params``.
    params: template pytree.

  Returns:
    The dense matrix, in the order of ``jax.flatten_util.ravel_pytree(params)``.

  Example:
    >>> import jax.numpy as jnp
    >>> from optim import dense_matrix, hessian_matvec
    >>> dense_matrix(hessian_matvec(lambda w: w[0] * w[1], jnp.zeros(2)), jnp.zeros(2)).tolist()
    [[0.0, 1.0], [1.0, 0.0]]
  """
  mv, flat, _ = flatten_matvec(matvec, params)
  return jax.vmap(mv, out_axes=1)(jnp.eye(flat.size, dtype=flat.dtype))
