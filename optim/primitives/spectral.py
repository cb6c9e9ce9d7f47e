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
    alphas: diagonal of ``T``, shape ``(m,)``; zero beyond ``steps``.
    betas: off-diagonal of ``T``, shape ``(m - 1,)``; zero where the iteration restarted after breakdown and
      from index ``steps - 1`` on.
    basis: the Krylov basis as a pytree like ``params`` with a leading axis ``m`` (or ``None``); rows from
      ``steps`` on are zero.
    steps: the number of steps taken (= matvecs), ``m`` unless the stopping rule ended the run earlier.
  """
  alphas: jax.Array
  betas: jax.Array
  basis: PyTree | None
  steps: jax.Array | int | None = None


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


def _project_out(x: jax.Array, basis: jax.Array) -> jax.Array:
  """One classical Gram-Schmidt pass ``x - V^T (V x)`` for a block of probes: ``x (p, n)``, ``basis (p, k, n)``."""
  if x.shape[0] == 1:  # one probe: plain matrix-vector products, no batch dimension for XLA to carry
    return (x[0] - (basis[0] @ x[0]) @ basis[0])[None]
  return x - jnp.einsum('pk,pkn->pn', jnp.einsum('pkn,pn->pk', basis, x), basis)


def _block_size(num_steps: int) -> int:
  # Step j only needs rows 0..j of the basis. Reading the rows in blocks of this size (the count chosen per step
  # by lax.switch among static slices) halves the bytes read on average while keeping the number of compiled
  # branches, and so the compile time, small.
  return max(8, -(-num_steps // 8))


def _project_out_prefix(x: jax.Array, basis: jax.Array, rows: jax.Array) -> jax.Array:
  """:func:`_project_out` against the first ``rows`` (traced) rows of ``basis``, reading only the blocks that hold
  them."""
  m = basis.shape[1]
  size = _block_size(m)
  sizes = sorted({min(m, size * (b + 1)) for b in range(-(-m // size))})
  branches = [lambda x, basis, k=k: _project_out(x, basis[:, :k]) for k in sizes]
  index = jnp.searchsorted(jnp.asarray(sizes), rows)
  return jax.lax.switch(jnp.minimum(index, len(sizes) - 1), branches, x, basis)


def _norms(x: jax.Array) -> jax.Array:
  return jnp.linalg.norm(x, axis=-1)


def _reorthogonalise(r: jax.Array, basis: jax.Array, rows: jax.Array) -> jax.Array:
  """Full reorthogonalisation of the three-term residual ``r (p, n)`` against ``rows`` stored basis vectors.

  One Gram-Schmidt pass, and a second only when the first removed more than a factor ``1/sqrt(2)`` of the norm
  (the criterion of Daniel, Gragg, Kaufman & Stewart 1976): after the three-term recurrence the components along
  older vectors are at rounding level, so one pass is the rule and the second (lax.cond) runs only near breakdown.
  """
  before = _norms(r)
  r = _project_out_prefix(r, basis, rows)
  again = jnp.any(_norms(r) < before / math.sqrt(2.0))
  # The rare second pass reads the whole basis (unused rows are zero): one branch fewer to compile per block.
  return jax.lax.cond(again, lambda r: _project_out(r, basis), lambda r: r, r)


def _padded_tridiagonal(alphas: jax.Array, couple: jax.Array, rows: jax.Array | int) -> jax.Array:
  """``T`` of the first ``rows`` steps, size kept at ``m``: the unused rows (``couple`` must be zero there) get a
  decoupled diagonal below the Gershgorin interval of the used ones, so their eigenvalues sort first."""
  real = jnp.arange(alphas.shape[0]) < rows
  zero = jnp.zeros(1, couple.dtype)
  radius = jnp.abs(jnp.concatenate([couple, zero])) + jnp.abs(jnp.concatenate([zero, couple]))
  low = jnp.min(jnp.where(real, alphas - radius, jnp.inf))
  high = jnp.max(jnp.where(real, alphas + radius, -jnp.inf))
  return tridiagonal(jnp.where(real, alphas, low - 1.0 - (high - low)), couple)


def _top_residuals_converged(alphas: jax.Array, betas: jax.Array, j: jax.Array, k: int, tol: float) -> jax.Array:
  """Whether the ``k`` largest Ritz values of ``T_{j+1}`` (rows ``0..j``; ``betas[j]`` the next residual norm)
  have residuals ``|beta_{j+1} s_{j,i}| <= tol |theta_i|``, the bound ``||A u_i - theta_i u_i||`` of ARPACK.

  Ritz values by bisection (``eigh_tridiagonal``), the last components ``s_{j,i}`` by two steps of inverse
  iteration (tridiagonal solves): ``O(k m)`` work, where a dense ``eigh`` of ``T`` per check would cost more
  than the matvecs it saves.
  """
  m = alphas.shape[0]
  couple = jnp.where(jnp.arange(m - 1) < j, betas[:-1], 0.0)
  t = _padded_tridiagonal(alphas, couple, j + 1)
  diagonal = jnp.diagonal(t)
  values = jax.scipy.linalg.eigh_tridiagonal(diagonal, couple, eigvals_only=True, select='i',
                                             select_range=(m - k, m - 1))
  scale = jnp.max(jnp.abs(values)) + jnp.max(jnp.abs(couple))
  lower = jnp.concatenate([jnp.zeros(1, couple.dtype), couple])
  upper = jnp.concatenate([couple, jnp.zeros(1, couple.dtype)])

  def last_component(theta):
    # The shift stays 10 eps * ||T|| off the Ritz value so the solve is never exactly singular.
    shifted = diagonal - (theta + 10.0 * jnp.finfo(alphas.dtype).eps * scale)
    x = jnp.ones((m, 1), alphas.dtype)
    for _ in range(2):
      x = jax.lax.linalg.tridiagonal_solve(lower, shifted, upper, x)
      x = x / jnp.linalg.norm(x)
    return x[j, 0]

  residuals = jnp.abs(betas[j] * jax.vmap(last_component)(values))
  ok = residuals <= tol * jnp.abs(values)
  return jnp.all(ok) & (j + 1 >= k)


def _lanczos_block(mv: Callable[[jax.Array], jax.Array], v0: jax.Array, key: jax.Array, num_steps: int,
                   tol: float | None = None, k: int = 1, check_every: int = 4
                   ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  """Lanczos from every row of ``v0 (p, n)`` at once; returns ``alphas (p, m)``, ``betas (p, m - 1)``,
  ``basis (p, m, n)`` and the number of steps taken.

  The ``p`` probes advance together: one vmapped matvec per step (a batched Hessian-vector product is a few
  large matrix products instead of ``p`` small ones) and reorthogonalisation as batched products with the
  stored bases. With ``tol`` (one probe), the loop stops at the first check (every ``check_every`` steps) where
  the ``k`` largest Ritz pairs have converged.
  """
  p, n = v0.shape
  dtype = v0.dtype
  breakdown = 10.0 * math.sqrt(n) * jnp.finfo(dtype).eps
  mvs = (lambda v: mv(v[0])[None]) if p == 1 else jax.vmap(mv)
  basis = jnp.zeros((p, num_steps, n), dtype).at[:, 0].set(v0 / _norms(v0)[:, None])
  # Restart candidates are cyclic shifts of one Gaussian vector per probe: generic directions without drawing
  # random numbers inside the loop, which would multiply compile time.
  spare = jax.random.normal(key, (p, n), dtype)

  def step(j, basis, alphas, betas):
    v = basis[:, j]
    w = mvs(v)
    alpha = jnp.sum(v * w, axis=-1)
    beta_prev = jnp.where(j > 0, betas[:, j - 1], 0.0)
    previous = basis[:, jnp.maximum(j - 1, 0)]
    r = w - alpha[:, None] * v - beta_prev[:, None] * previous  # the three-term recurrence
    r = _reorthogonalise(r, basis, j + 1)
    beta = _norms(r)
    # Breakdown: the Krylov space is invariant (e.g. repeated eigenvalues). Restart with a fresh random
    # direction orthogonal to the basis and decouple it (beta = 0), as ARPACK does, so that m = n still
    # recovers every eigenvalue with its multiplicity. lax.cond: the restart's products run only on breakdown.
    broken = beta <= breakdown * _norms(w)

    def restart(r):
      fresh = _project_out(_project_out(jnp.roll(spare, j, axis=-1), basis), basis)
      return jnp.where(broken[:, None], fresh / _norms(fresh)[:, None], r / jnp.where(broken, 1.0, beta)[:, None])

    nxt = jax.lax.cond(jnp.any(broken), restart, lambda r: r / beta[:, None], r)
    basis = basis.at[:, j + 1].set(nxt, mode='drop')  # j + 1 == m is dropped: the last residual is unused
    return basis, alphas.at[:, j].set(alpha), betas.at[:, j].set(jnp.where(broken, 0.0, beta))

  alphas = jnp.zeros((p, num_steps), dtype)
  betas = jnp.zeros((p, num_steps), dtype)
  if tol is None:
    basis, alphas, betas = jax.lax.fori_loop(0, num_steps, lambda j, c: step(j, *c), (basis, alphas, betas))
    steps = jnp.asarray(num_steps)
  else:
    def body(carry):
      j, _, basis, alphas, betas = carry
      basis, alphas, betas = step(j, basis, alphas, betas)
      check = ((j + 1) % check_every == 0) & (j + 1 < num_steps)
      done = jax.lax.cond(check, lambda: _top_residuals_converged(alphas[0], betas[0], j, k, tol),
                          lambda: jnp.asarray(False))
      return j + 1, done, basis, alphas, betas

    init = (jnp.asarray(0), jnp.asarray(False), basis, alphas, betas)
    steps, _, basis, alphas, betas = jax.lax.while_loop(lambda c: (c[0] < num_steps) & ~c[1], body, init)
    # Row steps - 1 couples to an unused row; its residual norm is not part of T.
    betas = jnp.where(jnp.arange(num_steps) < steps - 1, betas, 0.0)
    basis = jnp.where((jnp.arange(num_steps) < steps)[None, :, None], basis, 0.0)
  return alphas, betas[:, :-1], basis, steps


def lanczos(matvec: Matvec, params: PyTree, key: jax.Array, num_steps: int, *, v0: PyTree | None = None,
            return_basis: bool = False, tol: float | None = None, k: int = 1) -> LanczosResult:
  """Lanczos tridiagonalisation with full reorthogonalisation, optionally stopped on the Ritz residuals.

  Builds an orthonormal basis ``v_1..v_m`` of the Krylov space ``span{v_1, A v_1, ..., A^{m-1} v_1}`` and
  ``T = V A V^T``, tridiagonal with ``alpha_j = v_j^T A v_j`` and ``beta_j = ||A v_j - alpha_j v_j -
  beta_{j-1} v_{j-1}||``. After the three-term recurrence each new vector is reorthogonalised against all
  previous ones by classical Gram-Schmidt, two matrix-vector products with the stored rows (``c = V w``,
  ``w - V^T c``; ``O(m n)`` memory), repeated only when the pass cancelled most of the vector (the DGKS
  criterion). So with ``m = n`` the eigenvalues of ``T`` equal those of ``A`` to working precision.

  Stopping rule (``tol``): the Ritz pair ``(theta_i, u_i = V^T s_i)`` after ``j`` steps has residual
  ``||A u_i - theta_i u_i|| = beta_j |s_{j,i}|``; the iteration stops at the first check (every 4 steps) where
  the ``k`` largest Ritz values all have ``beta_j |s_{j,i}| <= tol |theta_i|`` (ARPACK's criterion, which bounds
  ``|lambda - theta_i|`` by the residual, and by its square over the gap once the gap is resolved), so a top-``k``
  query uses only the matvecs it needs; ``num_steps`` is the cap.

  Args:
    matvec: symmetric linear map on pytrees shaped like ``params``.
    params: template pytree.
    key: PRNG key for the start vector (Gaussian) and for restarts after breakdown.
    num_steps: ``m``, the number of steps (the most when ``tol`` is given), at most the number of parameters.
    v0: optional start vector (pytree like ``params``, normalised here); overrides the random one.
    return_basis: also return the basis ``V`` (as a pytree with a leading axis ``m``).
    tol: relative Ritz-residual tolerance of the stopping rule; ``None`` runs all ``num_steps`` steps.
    k: how many of the largest (algebraic) Ritz values the stopping rule waits for.

  Returns:
    A :class:`LanczosResult` ``(alphas, betas, basis, steps)``; arrays keep their length ``m``, zero-padded
    beyond ``steps``.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from optim import lanczos, ritz
    >>> a = jnp.diag(jnp.array([1.0, 2.0, 3.0]))
    >>> values, _ = ritz(lanczos(lambda v: a @ v, jnp.zeros(3), jax.random.key(0), num_steps=3))
    >>> [round(float(x), 3) for x in values]
    [1.0, 2.0, 3.0]

  Lanczos (1950); for Hessians: Ghorbani, Krishnan & Xiao, arXiv 1901.10159; PyHessian, arXiv 1912.07145
  (whose ``eigenvalues`` is power iteration with deflation: :func:`power_iteration`).
  """
  mv, flat, unravel = flatten_matvec(matvec, params)
  if not 1 <= num_steps <= flat.size:
    raise ValueError(f'lanczos: num_steps must be in [1, {flat.size}] (the number of parameters), got {num_steps}')
  if tol is not None and not (math.isfinite(tol) and tol > 0):
    raise ValueError(f'lanczos: tol must be finite and > 0 (or None), got {tol!r}')
  if not isinstance(k, int) or not 1 <= k <= num_steps:
    raise ValueError(f'lanczos: k must be an int in [1, num_steps={num_steps}], got {k!r}')
  start_key, restart_key = jax.random.split(key)
  if v0 is None:
    start = jax.random.normal(start_key, flat.shape, flat.dtype)
  else:
    start = ravel_pytree(v0)[0].astype(flat.dtype)
  alphas, betas, basis, steps = _lanczos_block(mv, start[None], restart_key, num_steps, tol, k)
  return LanczosResult(alphas[0], betas[0], jax.vmap(unravel)(basis[0]) if return_basis else None, steps)


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
    basis was not kept. When the stopping rule ended the run after ``steps < m`` steps, the first ``m - steps``
    values are NaN and their vectors zero (the largest stay last: ``values[-k:]``).

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from optim import lanczos, ritz
    >>> a = jnp.array([[2.0, 1.0], [1.0, 2.0]])
    >>> values, vectors = ritz(lanczos(lambda v: a @ v, jnp.zeros(2), jax.random.key(1), 2, return_basis=True))
    >>> [round(float(x), 3) for x in values], [round(abs(float(x)), 3) for x in vectors[1]]
    ([1.0, 3.0], [0.707, 0.707])
  """
  m = result.alphas.shape[0]
  steps = m if result.steps is None else result.steps
  t = _padded_tridiagonal(result.alphas, result.betas, steps)
  unused = jnp.arange(m) < m - steps
  if result.basis is None:
    # Values only: bisection on T, O(m^2) in XLA, where a LAPACK eigh can stall on a loaded multi-core host.
    values = jax.scipy.linalg.eigh_tridiagonal(jnp.diagonal(t), result.betas, eigvals_only=True)
    return jnp.where(unused, jnp.nan, values), None
  values, s = jnp.linalg.eigh(t)
  values = jnp.where(unused, jnp.nan, values)
  vectors = jax.tree.map(lambda b: jnp.tensordot(s.T, b, axes=1), result.basis)
  return values, vectors


_SLQ_BASIS_BYTES = 1 << 28  # memory for the stored bases of a block of SLQ probes when batch_size is None


def slq(matvec: Matvec, params: PyTree, key: jax.Array, num_steps: int, num_probes: int = 1,
        batch_size: int | None = None) -> SpectralQuadrature:
  """Stochastic Lanczos quadrature for the spectral density of a symmetric operator.

  The spectral measure ``phi(t) = (1/n) sum_i delta(t - lambda_i)`` satisfies ``E_v[v^T f(A) v] = n^{-1}
  tr f(A)`` for a unit probe ``v`` with ``E[v v^T] = I/n``. For each probe, ``m`` Lanczos steps from ``v``
  give the ``m``-point Gauss quadrature rule of ``v^T f(A) v``: nodes ``theta_k`` (Ritz values) and weights
  ``tau_k = S_{1k}^2`` (squared first components of the eigenvectors of ``T``), exact for polynomials of
  degree ``<= 2m - 1``. Probes are normalised Rademacher vectors, as in PyHessian. The probes of a block run as
  one batched Lanczos (one vmapped matvec per step, batched reorthogonalisation); full reorthogonalisation, as
  PyHessian's ``density`` does.

  Args:
    matvec: symmetric linear map on pytrees shaped like ``params``.
    params: template pytree.
    key: PRNG key.
    num_steps: Lanczos steps ``m`` per probe (at most the number of parameters).
    num_probes: number of independent probes.
    batch_size: probes run together (their bases take ``batch_size * m * n`` numbers); ``None`` takes as many
      as fit in 256 MB of bases (all of them on small problems, one at a time on large models).

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
    raise ValueError(f'slq: num_steps must be in [1, {flat.size}] (the number of parameters), got {num_steps}')
  if not isinstance(num_probes, int) or num_probes < 1:
    raise ValueError(f'slq: num_probes must be an int >= 1, got {num_probes!r}')
  if batch_size is None:
    size = max(1, _SLQ_BASIS_BYTES // (num_steps * flat.size * flat.dtype.itemsize))
  else:
    size = batch_size
  if not isinstance(size, int) or not 1 <= size:
    raise ValueError(f'slq: batch_size must be an int >= 1 (or None), got {batch_size!r}')
  size = min(size, num_probes)
  blocks = -(-num_probes // size)
  probe_key, restart_key = jax.random.split(key)
  probes = jax.random.rademacher(probe_key, (blocks, size, flat.size), dtype=flat.dtype)

  def block(args):
    v0, k = args
    alphas, betas, _, _ = _lanczos_block(mv, v0, k, num_steps)
    nodes, s = jnp.linalg.eigh(jax.vmap(tridiagonal)(alphas, betas))
    return nodes, s[:, 0] ** 2

  nodes, weights = jax.lax.map(block, (probes, jax.random.split(restart_key, blocks)))
  shape = (blocks * size, num_steps)
  return SpectralQuadrature(nodes.reshape(shape)[:num_probes], weights.reshape(shape)[:num_probes])


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
