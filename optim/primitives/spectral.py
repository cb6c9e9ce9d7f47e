"""Lanczos, stochastic Lanczos quadrature (spectral densities) and deflated power iteration on pytrees.

The operator is a ``matvec`` closure on pytrees shaped like a template ``params`` (e.g.
:func:`optim.hessian_matvec`); iterations run in the raveled space with ``lax`` loops, so every
function is jit-able with static step counts.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from optim.primitives.curvature import flatten_matvec

PyTree = Any
Matvec = Callable[[PyTree], PyTree]


class LanczosResult(NamedTuple):
  """Output of :func:`lanczos`: ``T = tridiag(betas, alphas, betas) = V A V^T`` with orthonormal rows ``V``.

  Attributes:
    alphas: diagonal of ``T``, shape ``(m,)``.
    betas: off-diagonal of ``T``, shape ``(m - 1,)``; zero where the iteration restarted after breakdown.
    basis: the Krylov basis as a pytree like ``params`` with a leading axis ``m`` (or ``None``).
  """
  alphas: jax.Array
  betas: jax.Array
  basis: PyTree | None


class SpectralQuadrature(NamedTuple):
  """Output of :func:`slq`: one Gauss quadrature rule per probe for the spectral measure of ``A``.

  Attributes:
    nodes: Ritz values, shape ``(num_probes, num_steps)``.
    weights: squared first components of the Ritz vectors, same shape; each row sums to one.
  """
  nodes: jax.Array
  weights: jax.Array


def _orthogonalise(x: jax.Array, basis: jax.Array) -> jax.Array:
  # Classical Gram-Schmidt applied twice ("twice is enough", Parlett): stable to working precision. Each pass is
  # two matrix-vector products against the whole stored basis (``c = V x``, ``x - V^T c``), which run at memory
  # bandwidth; unused rows of `basis` are zero and contribute nothing.
  x = x - (basis @ x) @ basis
  return x - (basis @ x) @ basis


def _block_size(num_steps: int) -> int:
  # Step j only needs rows 0..j of the basis. Reading the rows in blocks of this size (the count chosen per step
  # by lax.switch among static slices) halves the bytes read on average while keeping the number of compiled
  # branches, and so the compile time, small.
  return max(8, -(-num_steps // 8))


def _orthogonalise_prefix(x: jax.Array, basis: jax.Array, rows: jax.Array) -> jax.Array:
  """CGS2 of ``x`` against the first ``rows`` (traced) rows of ``basis``, reading only the blocks that hold them."""
  m = basis.shape[0]
  size = _block_size(m)
  sizes = sorted({min(m, size * (b + 1)) for b in range(-(-m // size))})
  branches = [lambda x, basis, k=k: _orthogonalise(x, basis[:k]) for k in sizes]
  index = jnp.searchsorted(jnp.asarray(sizes), rows)
  return jax.lax.switch(jnp.minimum(index, len(sizes) - 1), branches, x, basis)


def _lanczos_flat(mv: Callable[[jax.Array], jax.Array], v0: jax.Array, key: jax.Array,
                  num_steps: int) -> tuple[jax.Array, jax.Array, jax.Array]:
  n = v0.size
  dtype = v0.dtype
  tol = 10.0 * math.sqrt(n) * jnp.finfo(dtype).eps
  basis = jnp.zeros((num_steps, n), dtype).at[0].set(v0 / jnp.linalg.norm(v0))
  # Restart candidates are cyclic shifts of one Gaussian vector: generic directions without drawing random
  # numbers inside the loop, which would multiply compile time.
  spare = jax.random.normal(key, (n,), dtype)

  def step(j, carry):
    basis, alphas, betas = carry
    w = mv(basis[j])
    alpha = jnp.vdot(basis[j], w)
    # Full reorthogonalisation against every previous vector subsumes the three-term recurrence and keeps
    # the basis orthogonal, so no spurious copies of converged Ritz values appear.
    r = _orthogonalise_prefix(w, basis, j + 1)
    beta = jnp.linalg.norm(r)
    # Breakdown: the Krylov space is invariant (e.g. repeated eigenvalues). Restart with a fresh random
    # direction orthogonal to the basis and decouple it (beta = 0), as ARPACK does, so that m = n still
    # recovers every eigenvalue with its multiplicity. lax.cond: the restart's products run only on breakdown.
    broken = beta <= tol * jnp.linalg.norm(w)

    def restart(_):
      fresh = _orthogonalise_prefix(jnp.roll(spare, j), basis, j + 1)
      return fresh / jnp.linalg.norm(fresh)

    nxt = jax.lax.cond(broken, restart, lambda _: r / beta, None)
    basis = basis.at[j + 1].set(nxt, mode='drop')  # j + 1 == m is dropped: the last residual is unused
    return basis, alphas.at[j].set(alpha), betas.at[j].set(jnp.where(broken, 0.0, beta))

  init = (basis, jnp.zeros(num_steps, dtype), jnp.zeros(num_steps, dtype))
  basis, alphas, betas = jax.lax.fori_loop(0, num_steps, step, init)
  return alphas, betas[:-1], basis


def lanczos(matvec: Matvec, params: PyTree, key: jax.Array, num_steps: int, *, v0: PyTree | None = None,
            return_basis: bool = False) -> LanczosResult:
  """Lanczos tridiagonalisation with full reorthogonalisation.

  Builds an orthonormal basis ``v_1..v_m`` of the Krylov space ``span{v_1, A v_1, ..., A^{m-1} v_1}`` and
  ``T = V A V^T``, tridiagonal with ``alpha_j = v_j^T A v_j`` and ``beta_j = ||A v_j - alpha_j v_j -
  beta_{j-1} v_{j-1}||``. Each new vector is reorthogonalised against all previous ones by classical
  Gram-Schmidt applied twice, each pass two matrix-vector products with the stored rows (``c = V w``,
  ``w - V^T c``; ``O(m n)`` memory, about ``m^2 n`` reads in all), so with ``m = n`` the eigenvalues of ``T``
  equal those of ``A`` to working precision.

  Args:
    matvec: symmetric linear map on pytrees shaped like ``params``.
    params: template pytree.
    key: PRNG key for the start vector (Gaussian) and for restarts after breakdown.
    num_steps: ``m``, at most the number of parameters ``n``.
    v0: optional start vector (pytree like ``params``, normalised here); overrides the random one.
    return_basis: also return the basis ``V`` (as a pytree with a leading axis ``m``).

  Returns:
    A :class:`LanczosResult` ``(alphas, betas, basis)``.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from optim import lanczos, ritz
    >>> a = jnp.diag(jnp.array([1.0, 2.0, 3.0]))
    >>> values, _ = ritz(lanczos(lambda v: a @ v, jnp.zeros(3), jax.random.key(0), num_steps=3))
    >>> [round(float(x), 3) for x in values]
    [1.0, 2.0, 3.0]

  Lanczos (1950); for Hessians: Ghorbani, Krishnan & Xiao, arXiv 1901.10159; PyHessian, arXiv 1912.07145.
  """
  mv, flat, unravel = flatten_matvec(matvec, params)
  if not 1 <= num_steps <= flat.size:
    raise ValueError(f'num_steps must be in [1, {flat.size}] (the number of parameters), got {num_steps}')
  start_key, restart_key = jax.random.split(key)
  if v0 is None:
    start = jax.random.normal(start_key, flat.shape, flat.dtype)
  else:
    start = ravel_pytree(v0)[0].astype(flat.dtype)
  alphas, betas, basis = _lanczos_flat(mv, start, restart_key, num_steps)
  return LanczosResult(alphas, betas, jax.vmap(unravel)(basis) if return_basis else None)


def tridiagonal(alphas: jax.Array, betas: jax.Array) -> jax.Array:
  """Dense symmetric tridiagonal matrix with diagonal ``alphas`` and off-diagonals ``betas``.

  Args:
    alphas: diagonal, shape ``(m,)``.
    betas: off-diagonal, shape ``(m - 1,)``.

  Returns:
    The ``m x m`` matrix ``T``.

  Example:
    >>> import jax.numpy as jnp
    >>> from optim import tridiagonal
    >>> tridiagonal(jnp.array([1.0, 2.0]), jnp.array([3.0])).tolist()
    [[1.0, 3.0], [3.0, 2.0]]
  """
  return jnp.diag(alphas) + jnp.diag(betas, 1) + jnp.diag(betas, -1)


def ritz(result: LanczosResult) -> tuple[jax.Array, PyTree | None]:
  """Ritz values and vectors of a Lanczos run: ``T = S diag(theta) S^T``, Ritz vectors ``V^T S``.

  Args:
    result: output of :func:`lanczos` (with ``return_basis=True`` for vectors).

  Returns:
    ``(values, vectors)``: ascending Ritz values ``theta``, shape ``(m,)``, and the Ritz vectors as a pytree
    like ``params`` with a leading axis ``m`` (``vectors[i]`` pairs with ``values[i]``), or ``None`` when the
    basis was not kept.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from optim import lanczos, ritz
    >>> a = jnp.array([[2.0, 1.0], [1.0, 2.0]])
    >>> values, vectors = ritz(lanczos(lambda v: a @ v, jnp.zeros(2), jax.random.key(1), 2, return_basis=True))
    >>> [round(float(x), 3) for x in values], [round(abs(float(x)), 3) for x in vectors[1]]
    ([1.0, 3.0], [0.707, 0.707])
  """
  values, s = jnp.linalg.eigh(tridiagonal(result.alphas, result.betas))
  if result.basis is None:
    return values, None
  vectors = jax.tree.map(lambda b: jnp.tensordot(s.T, b, axes=1), result.basis)
  return values, vectors


def slq(matvec: Matvec, params: PyTree, key: jax.Array, num_steps: int, num_probes: int = 1
        ) -> SpectralQuadrature:
  """Stochastic Lanczos quadrature for the spectral density of a symmetric operator.

  The spectral measure ``phi(t) = (1/n) sum_i delta(t - lambda_i)`` satisfies ``E_v[v^T f(A) v] = n^{-1}
  tr f(A)`` for a unit probe ``v`` with ``E[v v^T] = I/n``. For each probe, ``m`` Lanczos steps from ``v``
  give the ``m``-point Gauss quadrature rule of ``v^T f(A) v``: nodes ``theta_k`` (Ritz values) and weights
  ``tau_k = S_{1k}^2`` (squared first components of the eigenvectors of ``T``), exact for polynomials of
  degree ``<= 2m - 1``. Probes are normalised Rademacher vectors, as in PyHessian.

  Args:
    matvec: symmetric linear map on pytrees shaped like ``params``.
    params: template pytree.
    key: PRNG key.
    num_steps: Lanczos steps ``m`` per probe (at most the number of parameters).
    num_probes: number of independent probes (run one after another, each with an ``m x n`` basis).

  Returns:
    A :class:`SpectralQuadrature` ``(nodes, weights)``, each of shape ``(num_probes, num_steps)``.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from optim import slq
    >>> q = slq(lambda v: jnp.array([1.0, 2.0, 3.0, 4.0]) * v, jnp.zeros(4), jax.random.key(0), 4, 2)
    >>> q.nodes.shape, [round(float(s), 4) for s in q.weights.sum(1)]
    ((2, 4), [1.0, 1.0])

  Ubaru, Chen & Saad (2017); Ghorbani, Krishnan & Xiao, arXiv 1901.10159; PyHessian, arXiv 1912.07145.
  """
  mv, flat, _ = flatten_matvec(matvec, params)
  if not 1 <= num_steps <= flat.size:
    raise ValueError(f'num_steps must be in [1, {flat.size}] (the number of parameters), got {num_steps}')

  def one_probe(k):
    probe_key, restart_key = jax.random.split(k)
    v0 = jax.random.rademacher(probe_key, flat.shape, dtype=flat.dtype)
    alphas, betas, _ = _lanczos_flat(mv, v0, restart_key, num_steps)
    nodes, s = jnp.linalg.eigh(tridiagonal(alphas, betas))
    return nodes, s[0] ** 2

  nodes, weights = jax.lax.map(one_probe, jax.random.split(key, num_probes))
  return SpectralQuadrature(nodes, weights)


def _default_sigma(nodes: jax.Array) -> jax.Array:
  # PyHessian's kernel width: sigma^2 = 1e-5 * max(1, spectral range).
  return jnp.sqrt(1e-5 * jnp.maximum(1.0, nodes.max() - nodes.min()))


def spectral_density(quadrature: SpectralQuadrature, grid: jax.Array, sigma: float | jax.Array | None = None
                     ) -> jax.Array:
  """Gaussian-smoothed SLQ density on a grid: ``phi(t) ~ mean_probes sum_k tau_k N(t; theta_k, sigma^2)``.

  Args:
    quadrature: output of :func:`slq`.
    grid: points ``t`` at which to evaluate, shape ``(g,)``.
    sigma: kernel width; ``None`` uses PyHessian's ``sqrt(1e-5 * max(1, range of nodes))``.

  Returns:
    Density values, shape ``(g,)``; integrates to one over a grid covering the spectrum.

  Example:
    >>> import jax.numpy as jnp
    >>> from optim import SpectralQuadrature, spectral_density
    >>> q = SpectralQuadrature(nodes=jnp.array([[1.0, 3.0]]), weights=jnp.array([[0.25, 0.75]]))
    >>> grid = jnp.linspace(-1.0, 5.0, 601)
    >>> round(float(jnp.sum(spectral_density(q, grid, sigma=0.2)) * 0.01), 3)
    1.0
  """
  sigma = _default_sigma(quadrature.nodes) if sigma is None else sigma
  z = (grid[:, None, None] - quadrature.nodes[None]) / sigma
  kernel = jnp.exp(-0.5 * z ** 2) / (sigma * math.sqrt(2.0 * math.pi))
  return jnp.sum(kernel * quadrature.weights, axis=-1).mean(axis=-1)


def spectral_cdf(quadrature: SpectralQuadrature, grid: jax.Array, sigma: float | jax.Array | None = None
                 ) -> jax.Array:
  """Estimated spectral CDF ``F(t) = mean_probes sum_k tau_k 1{theta_k <= t}`` on a grid.

  Args:
    quadrature: output of :func:`slq`.
    grid: points ``t``, shape ``(g,)``.
    sigma: if given, the CDF of the Gaussian-smoothed density (consistent with :func:`spectral_density`);
      ``None`` gives the step function of the quadrature rules.

  Returns:
    CDF values in ``[0, 1]``, shape ``(g,)``; compare with ``mean(eigvals <= t)``.

  Example:
    >>> import jax.numpy as jnp
    >>> from optim import SpectralQuadrature, spectral_cdf
    >>> q = SpectralQuadrature(nodes=jnp.array([[1.0, 3.0]]), weights=jnp.array([[0.25, 0.75]]))
    >>> [round(float(x), 3) for x in spectral_cdf(q, jnp.array([0.0, 2.0, 4.0]))]
    [0.0, 0.25, 1.0]
  """
  diff = grid[:, None, None] - quadrature.nodes[None]
  if sigma is None:
    mass = (diff >= 0).astype(quadrature.weights.dtype)
  else:
    mass = jax.scipy.stats.norm.cdf(diff / sigma)
  return jnp.sum(mass * quadrature.weights, axis=-1).mean(axis=-1)


def power_iteration(matvec: Matvec, params: PyTree, key: jax.Array, k: int = 1, num_iters: int = 100
                    ) -> tuple[jax.Array, PyTree]:
  """Top-``k`` eigenpairs (largest ``|lambda|``) by deflated power iteration.

  For ``i = 1..k``: iterate ``v <- P A v / ||P A v||`` for ``num_iters`` steps, where ``P`` projects out the
  eigenvectors already found (equivalent to Hotelling deflation ``A - sum_j lambda_j u_j u_j^T`` for
  symmetric ``A``), then return the Rayleigh quotient ``lambda_i = v^T A v``. Pair ``i`` converges like
  ``|lambda_{i+1} / lambda_i|^num_iters``: it needs a spectral gap. Fixed iteration counts keep it jit-able.

  Args:
    matvec: symmetric linear map on pytrees shaped like ``params``.
    params: template pytree.
    key: PRNG key for the start vectors.
    k: number of eigenpairs.
    num_iters: power iterations per eigenpair.

  Returns:
    ``(eigenvalues, eigenvectors)``: shape ``(k,)`` in the order found (decreasing magnitude), and unit
    eigenvectors as a pytree like ``params`` with a leading axis ``k``.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from optim import power_iteration
    >>> vals, _ = power_iteration(lambda v: jnp.array([1.0, 5.0, 3.0]) * v, jnp.zeros(3), jax.random.key(0), 2)
    >>> [round(float(x), 3) for x in vals]
    [5.0, 3.0]

  As PyHessian's ``eigenvalues`` (arXiv 1912.07145), with a fixed iteration count instead of a tolerance.
  """
  mv, flat, unravel = flatten_matvec(matvec, params)
  if not 1 <= k <= flat.size:
    raise ValueError(f'k must be in [1, {flat.size}] (the number of parameters), got {k}')
  tiny = jnp.finfo(flat.dtype).tiny

  def find(i, carry):
    values, vectors = carry
    normalise = lambda x: x / jnp.maximum(jnp.linalg.norm(x), tiny)
    v = normalise(_orthogonalise(jax.random.normal(jax.random.fold_in(key, i), flat.shape, flat.dtype), vectors))
    v = jax.lax.fori_loop(0, num_iters, lambda _, v: normalise(_orthogonalise(mv(v), vectors)), v)
    return values.at[i].set(jnp.vdot(v, mv(v))), vectors.at[i].set(v)

  init = (jnp.zeros(k, flat.dtype), jnp.zeros((k, flat.size), flat.dtype))
  values, vectors = jax.lax.fori_loop(0, k, find, init)
  return values, jax.vmap(unravel)(vectors)
