"""M-FAC: gradients preconditioned by the inverse of a damped empirical Fisher over a sliding window.

Frantar, Kurtic & Alistarh, "M-FAC: Efficient Matrix-Free Approximations of Second-Order Information",
arXiv 2107.03356 (the dynamic algorithm of Section 4, the optimizer of Section 5), and the authors' code
IST-DASLab/M-FAC ``optim.py`` (``MFAC``, ``HInvFastUpMulti``).

With the window ``G`` (``m`` rows: the last ``m`` gradients of *all* parameters concatenated, zeros until it
fills) and ``F = lambda I + (1/m) G^T G``, every product is matrix-free: the ``m x m`` Gram matrix ``G G^T``
is kept up to date with one new row per step (``O(dm)``) and only ``m x m`` systems are factorised
(``O(m^3)``, the paper's per-update cost); no ``d x d`` matrix is ever formed.
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from optim import checks

PyTree = Any
_HIGHEST = jax.lax.Precision.HIGHEST  # the authors disable TF32 for the same reason


def _window_size(num_grads: Any) -> int:
  if isinstance(num_grads, jax.core.Tracer):
    raise ValueError(f"{checks.qualified('num_grads')} fixes the shape of the state and must be a concrete integer")
  checks.positive_int('num_grads', num_grads)
  return int(num_grads)


def _dots(window: PyTree, v: PyTree) -> jax.Array:
  """``G v`` summed over leaves: ``(m,)``."""
  return sum(jnp.tensordot(w, x.astype(w.dtype), axes=x.ndim, precision=_HIGHEST)
             for w, x in zip(jax.tree.leaves(window), jax.tree.leaves(v)))


def _combine(coefficients: jax.Array, window: PyTree) -> PyTree:
  """``G^T c``: a pytree like one row of the window."""
  return jax.tree.map(lambda w: jnp.tensordot(coefficients.astype(w.dtype), w, axes=1, precision=_HIGHEST),
                      window)


def _solve(matrix: jax.Array, rhs: jax.Array) -> jax.Array:
  return jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(matrix), rhs)


def fisher_inverse_product(window: PyTree, v: PyTree, damping: float, gram: jax.Array | None = None) -> PyTree:
  """``(damping I + (1/m) G^T G)^{-1} v`` by Woodbury, for any ``v``, in ``O(dm + m^3)``.

  ``F^{-1} v = v / lambda - G^T (m I + G G^T / lambda)^{-1} G v / lambda^2``: the closed form of the paper's
  ``m`` Sherman-Morrison rank-one updates, whose ``m x m`` recursions (LU without pivoting of
  ``m I + G G^T / lambda``, then triangular solves) are an ``LDL^T`` factorisation of that symmetric positive
  definite matrix; it is computed here by Cholesky.

  Args:
    window: the gradients ``G``: a pytree whose leaves have a leading axis of size ``m`` (rows of zeros
      count: ``m`` is the window size, as in the authors' code).
    v: a pytree like one row of ``window``.
    damping: ``lambda > 0``.
    gram: ``G G^T`` if already known (else computed, ``O(d m^2)``).

  Returns:
    ``F^{-1} v``, a pytree like ``v``.

  Example:
    >>> import jax.numpy as jnp
    >>> from optim.optimizers.mfac import fisher_inverse_product
    >>> window = {'w': jnp.array([[1.0, 0.0], [0.0, 0.0]])}   # m = 2, one gradient e_1 so far
    >>> out = fisher_inverse_product(window, {'w': jnp.array([1.0, 1.0])}, damping=0.5)
    >>> out['w'].tolist()   # F = diag(0.5 + 1/2, 0.5)
    [1.0, 2.0]
  """
  leaves = jax.tree.leaves(window)
  m = leaves[0].shape[0]
  if gram is None:
    gram = sum(jnp.tensordot(w, w, axes=(tuple(range(1, w.ndim)),) * 2, precision=_HIGHEST) for w in leaves)
  dots = _dots(window, v)
  c = _solve(m * jnp.eye(m, dtype=gram.dtype) + gram / damping, dots.astype(gram.dtype)) / damping ** 2
  correction = _combine(c, window)
  return jax.tree.map(lambda x, y: (x / damping - y).astype(x.dtype), v, correction)


class ScaleByMFACState(NamedTuple):
  count: jax.Array  # int32; the next gradient replaces row count % m (the oldest)
  grads: optax.Updates  # the window G: leaves of shape (m, *param.shape)
  gram: jax.Array  # (m, m), G G^T


def scale_by_mfac(num_grads: int = 1024, damping: float = 1e-5, dtype: Any = None
                  ) -> optax.GradientTransformation:
  """M-FAC's direction ``F^{-1} g`` with ``F = damping I + (1/m) sum_{i<=m} g_i g_i^T`` over the last ``m`` steps.

  Each step, as the authors' ``HInvFastUpMulti.update_mul``: the gradient replaces the oldest row of the ring
  buffer *before* the product (so it is in the window), the Gram row ``G g`` is computed (``O(dm)``), then
  ``F^{-1} g`` is formed. Since ``g = G^T e_s`` for its row ``s``, the push-through identity gives
  ``F^{-1} g = G^T (damping I + G G^T / m)^{-1} e_s``: the same vector as Woodbury, one ``m x m`` Cholesky
  solve and one ``O(dm)`` combination, without Woodbury's cancellation of two ``1/damping``-sized terms (which
  matters in float32 at the default ``damping = 1e-5``). Until the window fills, its zero rows still count in
  ``m``, as in the authors' code.

  Args:
    num_grads: window size ``m`` (the authors' ``ngrads``; default 1024 as theirs). The state holds ``m``
      copies of the parameters.
    damping: ``lambda`` (``damp``).
    dtype: dtype of the stored window (default: the parameter dtype promoted to at least float32).

  Returns:
    An ``optax.GradientTransformation``.

  Non-finite input: a step whose direction is not finite (a NaN/inf gradient) returns that direction but
  leaves the window and its Gram matrix unchanged, so the state is never poisoned. In float32 the ``m x m``
  system is singular to working precision once ``damping`` falls below about ``1e-7 ||g||^2 / m`` while the
  window's gradients are nearly collinear (deterministic problems); the direction is then non-finite. Raise
  ``damping``, or store the window in float64.

  Example:
    >>> import jax.numpy as jnp
    >>> from optim import scale_by_mfac
    >>> tx = scale_by_mfac(num_grads=4, damping=0.5)
    >>> g = jnp.array([2.0, 0.0])
    >>> direction, state = tx.update(g, tx.init(g))
    >>> [round(x, 5) for x in direction.tolist()]   # first step: g / (damping + |g|^2 / m)
    [1.33333, 0.0]
  """
  with checks.owner('scale_by_mfac'):
    m = _window_size(num_grads) if not isinstance(num_grads, jax.core.Tracer) else None
    checks.positive('damping', damping)

  def init_fn(params):
    size = m if m is not None else _window_size(num_grads)
    window = jax.tree.map(
        lambda p: jnp.zeros((size,) + p.shape, dtype or jnp.promote_types(p.dtype, jnp.float32)), params)
    gram_dtype = jnp.result_type(jnp.float32, *jax.tree.leaves(window))
    return ScaleByMFACState(jnp.zeros([], jnp.int32), window, jnp.zeros((size, size), gram_dtype))

  def update_fn(updates, state, params=None):
    del params
    checks.same_structure(updates, jax.tree.map(lambda w: w[0], state.grads), 'mfac')
    size = state.gram.shape[0]  # from the state, so inject_hyperparams may trace num_grads
    slot = state.count % size
    g = jax.tree.map(lambda w, u: u.astype(w.dtype), state.grads, updates)
    # The O(dm) products read the window as it was and account for the replaced row separately: reading the
    # updated window makes XLA fuse the row update into them, which is ~15x slower on CPU.
    row = _dots(state.grads, g).astype(state.gram.dtype)
    row = row.at[slot].set(sum(jnp.vdot(x, x, precision=_HIGHEST) for x in jax.tree.leaves(g)).astype(row.dtype))
    gram = state.gram.at[slot, :].set(row).at[:, slot].set(row)
    eye = jnp.eye(size, dtype=gram.dtype)
    weights = _solve(damping * eye + gram / size, eye[slot])
    others = _combine(weights.at[slot].set(0), state.grads)  # sum over the rows that stay
    direction = jax.tree.map(lambda d, x, u: (d + weights[slot].astype(d.dtype) * x).astype(u.dtype),
                             others, g, updates)
    # A non-finite step leaves the window and its Gram matrix as they were. The condition also depends on both
    # O(dm) products, which orders the in-place row write after them: written unconditionally, XLA (CPU) copies
    # the whole window twice per step to protect the reads, ~10x the cost of the step.
    finite = jnp.isfinite(sum(jnp.sum(d.astype(jnp.float32)) for d in jax.tree.leaves(direction)))
    window, gram = jax.lax.cond(
        finite,
        lambda: (jax.tree.map(lambda w, x: jax.lax.dynamic_update_index_in_dim(w, x, slot, 0), state.grads, g),
                 gram),
        lambda: (state.grads, state.gram))
    return direction, ScaleByMFACState(optax.safe_increment(state.count), window, gram)

  return optax.GradientTransformation(init_fn, update_fn)


def mfac(learning_rate: optax.ScalarOrSchedule, num_grads: int = 1024, damping: float = 1e-5,
         momentum: float = 0.0, weight_decay: float = 0.0, dtype: Any = None) -> optax.GradientTransformation:
  """The M-FAC optimizer: ``theta <- theta - lr * v``, ``v = mu v + (1 - mu) F^{-1} (g + wd theta)``.

  ``F = damping I + (1/m) G^T G`` over the window of the last ``m = num_grads`` (weight-decayed) gradients of
  all parameters together (:func:`scale_by_mfac`).

  Conventions: the authors' ``MFAC`` optimizer (the paper gives no momentum or weight-decay details): weight
  decay is *coupled* (added to the gradient before it enters the window), momentum is an EMA without
  dampening correction and is skipped when 0. The tests reproduce the authors' float64 trajectory to 1e-10.

  Args:
    learning_rate: step size (or schedule). The step is ``F^{-1} g``, of size about ``m / ||g||`` along
      the gradient: much larger than ``g``, so the learning rate is much smaller than SGD's.
    num_grads: window size ``m``.
    damping: ``lambda``.
    momentum: ``mu``.
    weight_decay: coupled L2 coefficient.
    dtype: dtype of the stored window.

  Returns:
    An ``optax.GradientTransformation``.

  Example:
    >>> import jax, jax.numpy as jnp, optax
    >>> from optim import mfac
    >>> loss = lambda p: jnp.sum(jnp.array([1.0, 4.0]) * p ** 2)
    >>> params = jnp.array([1.0, 1.0])
    >>> tx = mfac(1.0, num_grads=4, damping=1.0)
    >>> step = jax.jit(lambda p, s: tx.update(jax.grad(loss)(p), s, p))
    >>> state = tx.init(params)
    >>> for _ in range(20):
    ...   updates, state = step(params, state)
    ...   params = optax.apply_updates(params, updates)
    >>> bool(loss(params) < 0.05)
    True

  arXiv 2107.03356.
  """
  with checks.owner('mfac'):
    checks.non_negative('weight_decay', weight_decay)
    checks.decay_rate('momentum', momentum)
    checks.learning_rate(learning_rate)
    parts = [optax.add_decayed_weights(weight_decay), scale_by_mfac(num_grads, damping, dtype)]
    # A Python 0 skips the EMA (no state, as the authors' code); an array (inject_hyperparams) always keeps it.
    if not (isinstance(momentum, numbers.Number) and momentum == 0):
      parts.append(optax.ema(momentum, debias=False))
    return optax.chain(*parts, optax.scale_by_learning_rate(learning_rate))
