"""Randomised trace and diagonal estimators for matrix-free operators on pytrees: Hutchinson and Hutch++.

All estimators take a ``matvec`` closure (for instance :func:`optim.hessian_matvec`), a template
pytree ``params`` giving the operator's domain, a PRNG key and a probe count, and are jit-able (``num_probes``,
``distribution`` and ``batch_size`` must be static). Hutchinson's probes are drawn leaf by leaf in the pytree
(Rademacher signs 32 to a random word) and applied one by one, or vmapped in blocks of ``batch_size``; Hutch++
works in the raveled space, where its sketch is orthonormalised.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp

from optim.primitives.curvature import flatten_matvec

PyTree = Any
Matvec = Callable[[PyTree], PyTree]

DISTRIBUTIONS = ('rademacher', 'gaussian')


def _check(name: str, num_probes: int, distribution: str, batch_size: int | None, minimum: int = 1) -> None:
  if distribution not in DISTRIBUTIONS:
    raise ValueError(f'{name}: distribution must be one of {DISTRIBUTIONS}, got {distribution!r}')
  if not isinstance(num_probes, int) or num_probes < minimum:
    raise ValueError(f'{name}: num_probes must be an int >= {minimum}, got {num_probes!r}')
  if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
    raise ValueError(f'{name}: batch_size must be an int >= 1 or None, got {batch_size!r}')


def rademacher(key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
  """Independent uniform signs, 32 per random word: the same law as ``jax.random.rademacher``, which draws a
  word per sign (measured on CPU: a quarter of a float32 100-probe Hutchinson estimate on PyHessian's MLP went
  to drawing its probes; packed, they cost about 8x less).

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from optim.primitives.estimators import rademacher
    >>> z = rademacher(jax.random.key(0), (2, 3), jnp.float32)
    >>> z.shape, bool(jnp.all(jnp.abs(z) == 1.0))
    ((2, 3), True)
  """
  size = math.prod(shape)
  words = jax.random.bits(key, (-(-size // 32),), jnp.uint32)
  bits = (words[:, None] >> jnp.arange(32, dtype=jnp.uint32)) & 1
  return (1 - 2 * bits.reshape(-1)[:size].astype(dtype)).reshape(shape)


def _probes(key: jax.Array, shape: tuple[int, ...], dtype: Any, distribution: str) -> jax.Array:
  if distribution == 'rademacher':
    return rademacher(key, shape, dtype)
  return jax.random.normal(key, shape, dtype=dtype)


def _tree_probes(key: jax.Array, params: PyTree, num_probes: int, distribution: str) -> PyTree:
  """``num_probes`` probes drawn leaf by leaf in each leaf's shape and dtype (a leading probe axis), one key per
  leaf: nothing is raveled into one vector and split back."""
  leaves, treedef = jax.tree.flatten(params)
  keys = jax.random.split(key, len(leaves))
  return jax.tree.unflatten(treedef, [_probes(k, (num_probes,) + jnp.shape(leaf), jnp.result_type(leaf),
                                              distribution) for k, leaf in zip(keys, leaves)])


def _mean_and_stderr(samples: jax.Array) -> tuple[jax.Array, jax.Array]:
  n = samples.shape[0]
  # ddof=1 makes the variance unbiased; with one probe the standard error is undefined (nan).
  return samples.mean(0), samples.std(0, ddof=1) / math.sqrt(n)


def _apply_rows(mv: Callable[[PyTree], PyTree], rows: PyTree, batch_size: int | None) -> PyTree:
  # lax.map keeps one matvec's activations alive at a time (memory of a single HVP), and on XLA:CPU it is also the
  # fastest (a vmapped block of Hessian-vector products measured 1.3-1.5x slower on PyHessian's MLP); batch_size
  # vectorises blocks of matvecs, which accelerators want.
  return jax.lax.map(mv, rows, batch_size=batch_size)


def _probe_products(rows: PyTree, products: PyTree) -> jax.Array:
  """``z_i^T A z_i`` for every probe ``i``, summed leaf by leaf."""
  per_leaf = jax.tree.map(lambda z, az: jnp.sum((z * az).reshape(z.shape[0], -1), axis=1), rows, products)
  return sum(jax.tree.leaves(per_leaf))


def hutchinson_trace(matvec: Matvec, params: PyTree, key: jax.Array, num_probes: int = 100,
                     distribution: str = 'rademacher', batch_size: int | None = None
                     ) -> tuple[jax.Array, jax.Array]:
  """Hutchinson's trace estimator ``tr(A) ~ (1/m) sum_i z_i^T A z_i`` with its standard error.

  Unbiased since ``E[z z^T] = I``. Per probe, ``Var[z^T A z] = 2(||A||_F^2 - sum_i A_ii^2)`` for Rademacher
  and ``2 ||A||_F^2`` for Gaussian probes (symmetric ``A``); the returned standard error is the sample
  standard deviation over probes divided by ``sqrt(m)``.

  Args:
    matvec: symmetric linear map on pytrees shaped like ``params``.
    params: template pytree (shapes and dtypes of the domain).
    key: PRNG key; one key, one result.
    num_probes: number of probes ``m`` (= matvecs); at least 2 for a finite standard error.
    distribution: ``'rademacher'`` or ``'gaussian'``.
    batch_size: matvecs vectorised together (``None``: one at a time, least memory, fastest on CPU).

  Returns:
    ``(estimate, stderr)``, two scalars.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from optim import hutchinson_trace
    >>> est, err = hutchinson_trace(lambda v: 3.0 * v, jnp.zeros(4), jax.random.key(0), num_probes=8)
    >>> round(float(est), 4), round(float(err), 4)   # Rademacher is exact on diagonal matrices
    (12.0, 0.0)

  Hutchinson (1990); Avron & Toledo (2011); as used by PyHessian (arXiv 1912.07145).
  """
  _check('hutchinson_trace', num_probes, distribution, batch_size)
  z = _tree_probes(key, params, num_probes, distribution)
  return _mean_and_stderr(_probe_products(z, _apply_rows(matvec, z, batch_size)))


def hutchinson_diagonal(matvec: Matvec, params: PyTree, key: jax.Array, num_probes: int = 100,
                        distribution: str = 'rademacher', batch_size: int | None = None
                        ) -> tuple[PyTree, PyTree]:
  """Diagonal estimator ``diag(A) ~ (1/m) sum_i z_i * (A z_i)`` with per-entry standard errors.

  Unbiased since ``E[z_j z_k] = delta_jk``; entry ``j`` has per-probe variance ``sum_{k != j} A_jk^2`` for
  Rademacher probes (exact for diagonal ``A``) and ``A_jj^2 + sum_k A_jk^2`` for Gaussian probes
  (Bekas, Kokiopoulou & Saad 2007; the Hessian-diagonal estimate of Sophia, arXiv 2305.14342).

  Args:
    matvec: linear map on pytrees shaped like ``params``.
    params: template pytree.
    key: PRNG key.
    num_probes: number of probes (= matvecs); at least 2 for finite standard errors.
    distribution: ``'rademacher'`` or ``'gaussian'``.
    batch_size: matvecs vectorised together (``None``: one at a time, least memory, fastest on CPU).

  Returns:
    ``(diagonal, stderr)``, two pytrees with the structure of ``params``.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from optim import hutchinson_diagonal
    >>> d, _ = hutchinson_diagonal(lambda p: {'w': 2.0 * p['w']}, {'w': jnp.zeros(3)}, jax.random.key(0), 4)
    >>> d['w'].tolist()
    [2.0, 2.0, 2.0]
  """
  _check('hutchinson_diagonal', num_probes, distribution, batch_size)
  z = _tree_probes(key, params, num_probes, distribution)
  stats = jax.tree.map(lambda z, az: _mean_and_stderr(z * az), z, _apply_rows(matvec, z, batch_size))
  outer = jax.tree.structure(params)
  return jax.tree.transpose(outer, jax.tree.structure((0, 0)), stats)


def hutchpp_trace(matvec: Matvec, params: PyTree, key: jax.Array, num_probes: int = 99,
                  distribution: str = 'rademacher', batch_size: int | None = None
                  ) -> tuple[jax.Array, jax.Array]:
  """Hutch++ trace estimator: exact trace on a sketched top subspace plus Hutchinson on the rest.

  With a budget of ``m`` matvecs and ``k = m // 3``: sketch ``Q = orth(A S)`` for ``S`` of ``k`` random
  columns, then ``tr(A) ~ tr(Q^T A Q) + (1/r) sum_i g_i^T (I - QQ^T) A (I - QQ^T) g_i`` with ``r = m - 2k``
  probes ``g_i``. The error is ``O(1/m)`` for PSD ``A`` rather than Hutchinson's ``O(1/sqrt(m))``, and much
  smaller whenever the spectrum decays. Uses exactly ``m`` matvecs.

  Args:
    matvec: symmetric linear map on pytrees shaped like ``params``.
    params: template pytree.
    key: PRNG key.
    num_probes: total matvec budget ``m`` (at least 3; at least 6 for a finite standard error).
    distribution: ``'rademacher'`` or ``'gaussian'`` (for both sketch and probes).
    batch_size: matvecs vectorised together (``None``: one at a time).

  Returns:
    ``(estimate, stderr)``; the standard error is that of the residual Hutchinson term, conditional on the
    sketch (the low-rank term is exact given ``Q``).

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from optim import hutchpp_trace
    >>> a = jnp.diag(jnp.array([5.0, 1.0, 0.0, 0.0]))
    >>> est, _ = hutchpp_trace(lambda v: a @ v, jnp.zeros(4), jax.random.key(0), num_probes=6)
    >>> round(float(est), 3)   # rank 2 is captured by the 2-column sketch
    6.0

  Meyer, Musco, Musco & Woodruff, "Hutch++: Optimal stochastic trace estimation", arXiv 2010.09649
  (Algorithm 1).
  """
  _check('hutchpp_trace', num_probes, distribution, batch_size, minimum=3)
  mv, flat, _ = flatten_matvec(matvec, params)
  k = num_probes // 3
  r = num_probes - 2 * k
  sketch_key, probe_key = jax.random.split(key)
  s = _probes(sketch_key, (k, flat.size), flat.dtype, distribution)
  q = jnp.linalg.qr(_apply_rows(mv, s, batch_size).T)[0]  # (n, k), orthonormal columns
  low_rank = jnp.sum(q.T * _apply_rows(mv, q.T, batch_size))
  g = _probes(probe_key, (r, flat.size), flat.dtype, distribution)
  g = g - (g @ q) @ q.T  # (I - QQ^T) g; symmetric projector, so g^T P A P g = (Pg)^T A (Pg)
  samples = jnp.sum(g * _apply_rows(mv, g, batch_size), axis=1)
  mean, stderr = _mean_and_stderr(samples)
  return low_rank + mean, stderr
