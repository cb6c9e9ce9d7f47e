"""Randomised trace and diagonal estimators for matrix-free operators on pytrees: Hutchinson and Hutch++.

All estimators take a ``matvec`` closure (for instance :func:`optim.hessian_matvec`), a template
pytree ``params`` giving the operator's domain, a PRNG key and a probe count, and are jit-able (``num_probes``
and ``distribution`` must be static). Probes are drawn in the raveled parameter space.
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


def _check(num_probes: int, distribution: str, minimum: int = 1) -> None:
  if distribution not in DISTRIBUTIONS:
    raise ValueError(f'distribution must be one of {DISTRIBUTIONS}, got {distribution!r}')
  if not isinstance(num_probes, int) or num_probes < minimum:
    raise ValueError(f'num_probes must be an int >= {minimum}, got {num_probes!r}')


def _probes(key: jax.Array, shape: tuple[int, ...], dtype: Any, distribution: str) -> jax.Array:
  if distribution == 'rademacher':
    return jax.random.rademacher(key, shape, dtype=dtype)
  return jax.random.normal(key, shape, dtype=dtype)


def _mean_and_stderr(samples: jax.Array) -> tuple[jax.Array, jax.Array]:
  n = samples.shape[0]
  # ddof=1 makes the variance unbiased; with one probe the standard error is undefined (nan).
  return samples.mean(0), samples.std(0, ddof=1) / math.sqrt(n)


def _apply_rows(mv: Callable[[jax.Array], jax.Array], rows: jax.Array, batch_size: int | None) -> jax.Array:
  # lax.map keeps one matvec's activations alive at a time (memory of a single HVP); batch_size trades memory
  # for vectorisation.
  return jax.lax.map(mv, rows, batch_size=batch_size)


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
    batch_size: matvecs vectorised together (``None``: one at a time, least memory).

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
  _check(num_probes, distribution)
  mv, flat, _ = flatten_matvec(matvec, params)
  z = _probes(key, (num_probes, flat.size), flat.dtype, distribution)
  samples = jnp.sum(z * _apply_rows(mv, z, batch_size), axis=1)
  return _mean_and_stderr(samples)


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
    batch_size: matvecs vectorised together (``None``: one at a time).

  Returns:
    ``(diagonal, stderr)``, two pytrees with the structure of ``params``.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from optim import hutchinson_diagonal
    >>> d, _ = hutchinson_diagonal(lambda p: {'w': 2.0 * p['w']}, {'w': jnp.zeros(3)}, jax.random.key(0), 4)
    >>> d['w'].tolist()
    [2.0, 2.0, 2.0]
  """
  _check(num_probes, distribution)
  mv, flat, unravel = flatten_matvec(matvec, params)
  z = _probes(key, (num_probes, flat.size), flat.dtype, distribution)
  mean, stderr = _mean_and_stderr(z * _apply_rows(mv, z, batch_size))
  return unravel(mean), unravel(stderr)


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
  _check(num_probes, distribution, minimum=3)
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
