"""Newton-Schulz iterations: orthogonalisation (polar factor), matrix (inverse) square roots, and whitening.

All functions act on the last two axes and broadcast over leading (batch) axes through batched ``matmul``;
iteration counts are static, so everything is jit-able and vmap-able.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

CUBIC_COEFFS = (1.5, -0.5, 0.0)
MUON_QUINTIC_COEFFS = (3.4445, -4.7750, 2.0315)
_NAMED = {'cubic': (CUBIC_COEFFS, 30), 'quintic': (MUON_QUINTIC_COEFFS, 5)}


def _mT(x: jax.Array) -> jax.Array:
  return jnp.swapaxes(x, -1, -2).conj()


def _frobenius(x: jax.Array) -> jax.Array:
  return jnp.linalg.norm(x, ord='fro', axis=(-2, -1), keepdims=True)


def _schedule(coeffs: Any, num_steps: int | None) -> jax.Array:
  if isinstance(coeffs, str):
    if coeffs not in _NAMED:
      raise ValueError(f'coeffs must be one of {sorted(_NAMED)} or an array of shape (3,) or (n, 3), got {coeffs!r}')
    coeffs, default_steps = _NAMED[coeffs]
    num_steps = default_steps if num_steps is None else num_steps
  coeffs = jnp.asarray(coeffs)
  if coeffs.ndim == 2 and coeffs.shape[1] == 3:
    return coeffs  # a per-step schedule; num_steps is ignored
  if coeffs.shape != (3,):
    raise ValueError(f'coeffs must have shape (3,) or (n, 3), got {coeffs.shape}')
  if num_steps is None or num_steps < 0:
    raise ValueError(f'num_steps must be a non-negative int for explicit coefficients, got {num_steps!r}')
  return jnp.broadcast_to(coeffs, (num_steps, 3))


def orthogonalize(x: jax.Array, num_steps: int | None = None, coeffs: Any = 'cubic', eps: float = 1e-8
                  ) -> jax.Array:
  """Newton-Schulz orthogonalisation: approximates the polar factor ``U V^T`` of ``x = U S V^T``.

  Normalises ``X_0 = x / (||x||_F + eps)`` (so every singular value is at most one), then iterates
  ``X <- a X + (b A + c A^2) X`` with ``A = X X^T``, which maps each singular value by the odd polynomial
  ``p(s) = a s + b s^3 + c s^5`` and leaves the singular vectors alone. Wide orientation is used
  (``x`` is transposed when it has more rows than columns) so that ``A`` is the smaller Gram matrix.

  * ``'cubic'``: ``(a, b, c) = (3/2, -1/2, 0)``, the classical iteration; it converges to ``U V^T``
    (quadratically once ``s`` is near one) for every non-zero singular value, and needs about
    ``log_{1.5}(||x||_F / s_min)`` + 5 steps; default 30.
  * ``'quintic'``: Muon's ``(3.4445, -4.7750, 2.0315)``, default 5 steps. It maximises the slope at zero
    rather than converging, so singular values land in a band around one (about ``[0.7, 1.2]``), not at one.
    This is exactly the convention of ``optax.contrib.muon`` with ``preconditioning='frobenius'``
    (``orthogonalize_via_newton_schulz``): same normalisation, ``eps``, transposition and step.

  Args:
    x: array of shape ``(..., m, n)``; leading axes are batch axes.
    num_steps: number of iterations (``None``: the default of the named coefficients).
    coeffs: ``'cubic'``, ``'quintic'``, a triple ``(a, b, c)``, or an ``(n, 3)`` per-step schedule.
    eps: added to the Frobenius norm, so a zero matrix maps to zero.

  Returns:
    Array like ``x``: ``U V^T`` (cubic) or ``U p^{(k)}(S) V^T`` in general.

  Example:
    >>> import jax.numpy as jnp
    >>> from optim import orthogonalize
    >>> jnp.round(orthogonalize(jnp.array([[3.0, 0.0], [0.0, 0.5]])), 3).tolist()
    [[1.0, 0.0], [0.0, 1.0]]

  Higham, "Functions of Matrices" (2008), sec. 8.3; Muon: Jordan et al. (2024), and Bernstein & Newhouse,
  arXiv 2409.20325.
  """
  named_cubic = isinstance(coeffs, str) and coeffs == 'cubic'
  schedule = _schedule(coeffs, num_steps).astype(x.dtype)
  tall = x.shape[-2] > x.shape[-1]
  if tall:
    x = _mT(x)
  x = x / (_frobenius(x) + eps)

  def step(x, c):
    a = x @ _mT(x)
    # The cubic step skips the unused A^2 product: half the matmuls.
    b = c[1] * a if named_cubic else c[1] * a + c[2] * (a @ a)
    return c[0] * x + b @ x, None

  x = jax.lax.scan(step, x, schedule)[0]
  return _mT(x) if tall else x


def sqrt_and_inverse_sqrt(a: jax.Array, num_steps: int = 30, ridge: float = 0.0
                          ) -> tuple[jax.Array, jax.Array]:
  """Matrix square root and inverse square root of an SPD matrix by the coupled Newton-Schulz iteration.

  With ``c = ||A + ridge I||_F`` (so that the spectrum of ``A / c`` lies in ``(0, 1]``), start ``Y_0 = A / c``,
  ``Z_0 = I`` and iterate ``T = (3I - Z Y) / 2``, ``Y <- Y T``, ``Z <- T Z``. Then ``Y_k -> (A/c)^{1/2}`` and
  ``Z_k -> (A/c)^{-1/2}`` quadratically once close, using only matrix products (no eigendecomposition), and
  the results are rescaled by ``sqrt(c)``. Eigenvalue ``lambda`` needs about ``log_{1.5}(c / lambda)`` steps
  before the quadratic phase.

  Args:
    a: symmetric positive definite matrix of shape ``(..., n, n)``; leading axes are batch axes.
    num_steps: number of iterations.
    ridge: added to the diagonal first, for semi-definite inputs.

  Returns:
    ``(sqrt, inverse_sqrt)``, each of shape ``(..., n, n)``. An all-zero matrix (``ridge = 0``) gives two zero
    matrices: the pseudo-inverse convention, so that whitening a zero gradient returns zero, not NaN.

  Example:
    >>> import jax.numpy as jnp
    >>> from optim import sqrt_and_inverse_sqrt
    >>> s, inv = sqrt_and_inverse_sqrt(jnp.diag(jnp.array([4.0, 1.0])))
    >>> jnp.round(s, 3).tolist(), jnp.round(inv, 3).tolist()
    ([[2.0, 0.0], [0.0, 1.0]], [[0.5, 0.0], [0.0, 1.0]])

  Higham (1997), "Stable iterations for the matrix square root"; Higham (2008) eq. (6.35).
  """
  eye = jnp.eye(a.shape[-1], dtype=a.dtype)
  a = a + ridge * eye
  c = _frobenius(a)
  nonzero = c > 0
  c = jnp.where(nonzero, c, 1.0)  # a zero matrix would start the iteration from 0/0

  def step(carry, _):
    y, z = carry
    t = 0.5 * (3.0 * eye - z @ y)
    return (y @ t, t @ z), None

  init = (a / c, jnp.broadcast_to(eye, a.shape))
  (y, z), _ = jax.lax.scan(step, init, None, length=num_steps)
  return y * jnp.sqrt(c), jnp.where(nonzero, z / jnp.sqrt(c), 0.0)


def inverse_sqrt(a: jax.Array, num_steps: int = 30, ridge: float = 0.0) -> jax.Array:
  """Inverse square root ``(A + ridge I)^{-1/2}`` of an SPD matrix by coupled Newton-Schulz.

  See :func:`sqrt_and_inverse_sqrt` for the iteration and its convergence.

  Args:
    a: symmetric positive definite matrix of shape ``(..., n, n)``.
    num_steps: number of iterations.
    ridge: added to the diagonal first.

  Returns:
    ``A^{-1/2}``, shape ``(..., n, n)``.

  Example:
    >>> import jax.numpy as jnp
    >>> from optim import inverse_sqrt
    >>> jnp.round(inverse_sqrt(jnp.array([[2.0, 0.0], [0.0, 8.0]])), 3).tolist()
    [[0.707, 0.0], [0.0, 0.354]]
  """
  return sqrt_and_inverse_sqrt(a, num_steps, ridge)[1]


def whiten(g: jax.Array, num_steps: int = 30, ridge: float = 0.0) -> jax.Array:
  """SWAN's whitening ``(G G^T)^{-1/2} G`` via coupled Newton-Schulz.

  For ``G = U S V^T`` of full rank this equals the polar factor ``U S^{-1} U^T U S V^T = U V^T``: the same
  matrix :func:`orthogonalize` approximates, reached through the inverse square root of the Gram matrix
  (whose condition number is the square of that of ``G``, so it needs more steps for ill-conditioned ``G``).
  Tall ``G`` (more rows than columns, so ``G G^T`` is singular) is handled as ``G (G^T G)^{-1/2}``, the same
  ``U V^T``. ``G`` is first scaled to unit Frobenius norm (the result is scale-invariant); ``ridge`` is added
  to the Gram matrix of the scaled ``G``.

  Args:
    g: array of shape ``(..., m, n)``; leading axes are batch axes.
    num_steps: Newton-Schulz iterations for the inverse square root.
    ridge: Tikhonov term on the normalised Gram matrix (its eigenvalues sum to one).

  Returns:
    The whitened matrix, shaped like ``g``.

  Example:
    >>> import jax.numpy as jnp
    >>> from optim import whiten
    >>> jnp.round(whiten(jnp.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]])), 3).tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]

  Ma et al., "SWAN: SGD with normalization and whitening", arXiv 2412.13148.
  """
  tall = g.shape[-2] > g.shape[-1]
  if tall:
    g = _mT(g)
  g = g / jnp.maximum(_frobenius(g), jnp.finfo(g.dtype).tiny)
  out = inverse_sqrt(g @ _mT(g), num_steps, ridge) @ g
  return _mT(out) if tall else out
