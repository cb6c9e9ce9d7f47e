"""FRUGAL: Adam on a low-dimensional part of the gradient, state-free signSGD (or SGD) on the rest.

Zmushko, Beznosikov, Takac & Horvath, "FRUGAL: Memory-Efficient Optimization by Reducing State Overhead for
Scalable Training", arXiv 2411.07837. Checked against the authors' code (``frugal/proj_optimizer_templates.py``,
``adamw.py``, ``galore_projector.py``, ``coordinate_projector.py``; commits 08f5142/c7ebe4c, preserved in the
fork hungquangbui02022003/FRUGAL).

Why not ``optax.contrib.galore``: it is GaLore only (the residual ``g - P^T P g`` is dropped, not stepped
with signSGD), and it has no coordinate or blockwise selection.

The SVD subspace is refreshed by the full SVD by default, as the authors' ``GaLoreProjector``
(``torch.linalg.svd``) does; ``svd_method='randomized'`` (Halko, Martinsson & Tropp, arXiv 0909.4061) or
``'subspace'`` (subspace iteration from the previous subspace) trade a tested accuracy (principal angles to the
full SVD's subspace) for a refresh that costs ``O(mn(r + p))`` per pass instead of ``O(mn min(m, n))``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from optim import checks

PROJECTIONS = ('svd', 'random', 'randperm', 'columns', 'rows', 'blocks')
PROJ_SIDES = ('std', 'reverse_std', 'right', 'left')
INACTIVE_RULES = ('sign_sgd', 'sgd', 'no')
SVD_METHODS = ('full', 'randomized', 'subspace')
# Defaults of the randomized SVD. They fix array shapes and loop counts, so they stay static: the arguments
# default to None (not a number, hence not a traced hyperparameter under optax.inject_hyperparams).
OVERSAMPLING, POWER_ITERATIONS = 10, 2
BLOCK_ORDERS = ('random', 'ascending', 'descending')


class FrugalState(NamedTuple):
  """FRUGAL's state.

  ``mu``/``nu`` mirror the parameters: Adam's moments at full size for the leaves Adam trains whole, at the
  size of the active subspace for projected leaves (``(m, r)`` or ``(r, n)``), and ``MaskedNode`` for
  projected leaves under ``'blocks'``, whose moments live in the flat ``block_mu``/``block_nu`` buffers (sized
  for the largest possible set of active tensors). ``projector`` holds the current subspace: the matrix ``P``
  (``'svd'``, ``'random'``) or the selected indices (``'randperm'``, ``'columns'``, ``'rows'``); ``active``
  the indices of the tensors active under ``'blocks'``.
  """
  count: jax.Array
  key: jax.Array
  mu: Any
  nu: Any
  projector: Any
  active: Any
  block_mu: Any
  block_nu: Any


class _Leaf(NamedTuple):
  """Static description of a projected leaf: which side/axis is projected and the subspace size."""
  kind: str   # 'matrix' (P), 'index' (coordinates)
  side: str   # 'right' (columns / axis 1) or 'left' (rows / axis 0)
  rank: int


def _side(shape: tuple[int, ...], projection: str, proj_side: str) -> str:
  m, n = shape
  if projection in ('columns', 'rows'):
    return 'right' if projection == 'columns' else 'left'
  right = (proj_side == 'right' or (proj_side == 'std' and m >= n) or (proj_side == 'reverse_std' and m < n))
  return 'right' if right else 'left'


def _kind(projection: str) -> str:
  return 'matrix' if projection in ('svd', 'random') else 'index'


def _leaf_spec(shape: tuple[int, ...], projection: str, proj_side: str, density: float) -> _Leaf:
  side = _side(shape, projection, proj_side)
  size = shape[1] if side == 'right' else shape[0]
  # CoordinateProjector takes int() (floor), GaLoreProjector round() (half to even).
  rank = int(size * density) if projection in ('columns', 'rows') else round(size * density)
  return _Leaf(_kind(projection), side, rank)


def _spec_from_state(shape: tuple[int, ...], projection: str, proj_side: str, projector: jax.Array) -> _Leaf:
  # The rank is read off the state, so a traced density (inject_hyperparams) never fixes a shape.
  side = _side(shape, projection, proj_side)
  kind = _kind(projection)
  rank = projector.shape[1] if kind == 'matrix' and side == 'left' else projector.shape[0]
  return _Leaf(kind, side, rank)


def _compute_dtype(dtype) -> Any:
  # SVD/QR and the moments in at least float32; float64 stays float64.
  return jnp.promote_types(dtype, jnp.float32)


def orthonormal_basis(y: jax.Array) -> jax.Array:
  """Orthonormal columns spanning (at least) the range of a tall ``m x k`` block ``y``.

  LU with partial pivoting gives a unit lower-triangular ``L`` with ``|L_ij| <= 1`` and ``range(y)`` inside
  ``range(PL)`` (well conditioned in practice, and of full rank even when ``y`` is not); CholeskyQR2 (Fukaya et
  al. 2014: ``R = chol(Y^T Y)``, ``Y R^{-1}``, twice) then orthonormalises it with two small Gram matrices.
  Householder QR is the fallback when the Cholesky factor breaks down. Why not QR alone: on XLA:CPU, LAPACK's QR
  of a tall block costs as much as the products it normalises many times over, while LU, a ``k x k`` Cholesky and
  triangular solves are cheap.

  Args:
    y: ``m x k`` block, ``k <= m``.

  Returns:
    ``m x k`` with orthonormal columns.
  """
  basis, _ = jax.scipy.linalg.lu(y, permute_l=True)

  def cholesky_qr(x):
    r = jnp.linalg.cholesky(x.T @ x)  # lower triangular, x^T x = r r^T
    return jax.scipy.linalg.solve_triangular(r, x.T, lower=True).T

  q = cholesky_qr(cholesky_qr(basis))
  return jax.lax.cond(jnp.all(jnp.isfinite(q)), lambda: q, lambda: jnp.linalg.qr(y)[0])


def top_singular_vectors(a: jax.Array, rank: int, key: jax.Array, oversampling: int = 10,
                         power_iterations: int = 2, start: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  r"""Approximate top-``rank`` singular vectors ``(U_r, V_r^T)`` of ``a`` by randomized subspace iteration.

  Halko, Martinsson & Tropp, "Finding structure with randomness" (arXiv 0909.4061), Algorithms 4.4 and 5.1,
  with ``k = rank + oversampling`` columns (at most ``min(m, n)``) and ``q = power_iterations``:

  .. math::
     Q = \mathrm{orth}(A \Omega),\quad
     q \text{ times: } Q = \mathrm{orth}(A\,\mathrm{orth}(A^\top Q)),\quad
     B = Q^\top A = \tilde U \Sigma V^\top,\quad U_r = Q \tilde U_{:, :r},\ V_r^\top = V^\top_{:r}.

  :math:`\Omega` (``n x k``) is Gaussian; ``start`` (``n x s``, ``s <= rank``, e.g. the previous subspace)
  replaces its first columns, which turns the randomized SVD into subspace iteration warm-started from a known
  subspace. ``orth`` is :func:`orthonormal_basis`; the small SVD of ``B`` is taken as ``B = (B Z) Z^T`` with
  ``Z = orth(B^T)``, the SVD of a ``k x k`` matrix. The error of the top-``r`` subspace falls like
  :math:`(\sigma_{k+1} / \sigma_r)^{2q + 1}`. Costs ``2q + 2`` products with ``a`` or its transpose and
  factorisations of ``k``-column blocks, against ``O(m n \min(m, n))`` for the full SVD.

  Args:
    a: ``m x n`` matrix.
    rank: ``r``, the number of singular vectors returned (static).
    key: PRNG key of :math:`\Omega`.
    oversampling: extra columns ``p`` of :math:`\Omega` (static).
    power_iterations: ``q``, each one product with ``a^T`` and one with ``a`` (static).
    start: optional ``n x s`` block that replaces the first ``s`` Gaussian columns.

  Returns:
    ``(u, vh)`` of shapes ``(m, r)`` and ``(r, n)``, orthonormal columns and rows.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from optim.optimizers.frugal import top_singular_vectors
    >>> a = jnp.diag(jnp.array([5.0, 3.0, 1.0, 0.5]))
    >>> u, vh = top_singular_vectors(a, 2, jax.random.key(0))
    >>> jnp.round(jnp.abs(vh), 4).tolist()
    [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]
  """
  m, n = a.shape
  k = min(rank + oversampling, m, n)
  omega = jax.random.normal(key, (n, k), a.dtype)
  if start is not None:
    omega = omega.at[:, :start.shape[1]].set(start.astype(a.dtype))
  q = orthonormal_basis(a @ omega)
  for _ in range(power_iterations):  # re-orthonormalised at every product (Algorithm 4.4), so no loss of rank
    q = orthonormal_basis(a @ orthonormal_basis(a.T @ q))
  b = q.T @ a
  z = orthonormal_basis(b.T)  # range(b^T) lies in range(z), so b = (b z) z^T
  u_small, _, w_t = jnp.linalg.svd(b @ z)
  return q @ u_small[:, :rank], w_t[:rank] @ z.T


def _svd_projector(g: jax.Array, previous: jax.Array, spec: _Leaf, key: jax.Array, svd_method: str,
                   oversampling: int, power_iterations: int) -> jax.Array:
  """The top-``r`` singular subspace of ``g`` on the projected side: ``Vh[:r]`` (right) or ``U[:, :r]`` (left)."""
  if svd_method == 'full':
    u, _, vh = jnp.linalg.svd(g, full_matrices=False)
    return vh[:spec.rank] if spec.side == 'right' else u[:, :spec.rank]
  start = None
  if svd_method == 'subspace':
    # Warm start from the previous subspace, mapped to the domain of g when it lives in g's column space; the
    # first refresh (no previous subspace: a zero projector) starts from Gaussian columns only.
    start = previous.T if spec.side == 'right' else g.T @ previous
    start = jnp.where(jnp.any(previous != 0), start, jax.random.normal(jax.random.fold_in(key, 1), start.shape,
                                                                        start.dtype))
  u, vh = top_singular_vectors(g, spec.rank, key, oversampling, power_iterations, start)
  return vh if spec.side == 'right' else u


def _new_projector(g: jax.Array, previous: jax.Array, spec: _Leaf, projection: str, key: jax.Array,
                   svd_method: str = 'full', oversampling: int = OVERSAMPLING,
                   power_iterations: int = POWER_ITERATIONS) -> jax.Array:
  m, n = g.shape
  size = n if spec.side == 'right' else m
  if spec.kind == 'index':
    return jax.random.permutation(key, size)[:spec.rank].astype(jnp.int32)
  if projection == 'svd':
    cd = _compute_dtype(g.dtype)
    return _svd_projector(g.astype(cd), previous.astype(cd), spec, key, svd_method, oversampling, power_iterations)
  # 'random': orthonormal columns from the QR of a Gaussian, signs fixed by diag(R) (Haar, as torch's
  # orthogonal_ init the authors use).
  q, r = jnp.linalg.qr(jax.random.normal(key, (size, spec.rank), _compute_dtype(g.dtype)))
  q = q * jnp.where(jnp.diagonal(r) < 0, -1.0, 1.0)
  return q.T if spec.side == 'right' else q


def _down(g: jax.Array, p: jax.Array, spec: _Leaf) -> jax.Array:
  if spec.kind == 'index':
    return jnp.take(g, p, axis=1 if spec.side == 'right' else 0)
  return g @ p.T if spec.side == 'right' else p.T @ g


def _up(x: jax.Array, p: jax.Array, spec: _Leaf, shape: tuple[int, ...]) -> jax.Array:
  if spec.kind == 'index':
    zeros = jnp.zeros(shape, x.dtype)
    return zeros.at[:, p].set(x) if spec.side == 'right' else zeros.at[p].set(x)
  return x @ p if spec.side == 'right' else p @ x


def _adam(g, mu, nu, count, b1, b2, eps):
  """One Adam step on ``g``: new moments and ``m_hat / (sqrt(v_hat) + eps)`` (the authors' AdamW)."""
  mu = b1 * mu + (1 - b1) * g
  nu = b2 * nu + (1 - b2) * jnp.square(g)
  t = count.astype(g.dtype)
  direction = (mu / (1 - b1 ** t)) / (jnp.sqrt(nu / (1 - b2 ** t)) + eps)
  return direction, mu, nu


def _inactive(g: jax.Array, rule: str) -> jax.Array:
  if rule == 'sign_sgd':
    return jnp.sign(g)
  if rule == 'sgd':
    return g
  return jnp.zeros_like(g)


def _mask(projected: Any, tree: Any) -> Any:
  if projected is None:
    return jax.tree.map(lambda x: jnp.ndim(x) == 2, tree)
  return projected(tree) if callable(projected) else projected


def _projected_leaves(projected: Any, tree: Any) -> list[bool]:
  flat, treedef = jax.tree.flatten(tree)
  mask = treedef.flatten_up_to(_mask(projected, tree))
  for x, p in zip(flat, mask):
    if p and jnp.ndim(x) != 2:
      raise ValueError(f'FRUGAL projects matrices only; a leaf of shape {jnp.shape(x)} was marked projected')
  return [bool(p) for p in mask]


def _block_layout(shapes: list[tuple[int, ...]], density: float) -> tuple[int, int]:
  """(number of active tensors, flat buffer length = total size of the largest such set)."""
  active = round(len(shapes) * density)
  sizes = sorted((math.prod(s) for s in shapes), reverse=True)
  return active, sum(sizes[:active])


def _active_blocks(count, key, num_blocks: int, num_active: int, update_gap, order: str) -> jax.Array:
  """Indices of the tensors active in the interval starting at ``count``."""
  interval = count // update_gap
  if order == 'random':
    return jax.random.permutation(jax.random.fold_in(key, count), num_blocks)[:num_active].astype(jnp.int32)
  if order == 'ascending':  # the authors' next_block_start += num_active (mod num_blocks)
    return ((interval * num_active + jnp.arange(num_active)) % num_blocks).astype(jnp.int32)
  return ((num_blocks - 1 - interval * num_active - jnp.arange(num_active)) % num_blocks).astype(jnp.int32)


def scale_by_frugal(density: float = 0.25, update_gap: int = 200, projection: str = 'svd', proj_side: str = 'std',
                    b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, reset_statistics: bool = True,
                    inactive_update_rule: str = 'sign_sgd', inactive_lr_scale: float = 1.0,
                    proj_params_lr_scale: float = 1.0, block_order: str = 'random',
                    projected: Any = None, seed: int = 0, mu_dtype: Any = None, svd_method: str = 'full',
                    oversampling: int | None = None, power_iterations: int | None = None
                    ) -> optax.GradientTransformation:
  r"""FRUGAL's direction: Adam in a subspace of each projected matrix, signSGD on the complement.

  For a projected gradient :math:`G` with the current projector :math:`P` (refreshed from the *current*
  gradient every ``update_gap`` steps, at steps 1, gap+1, ...; Adam's moments and step count reset with it
  when ``reset_statistics``), with ``down``/``up`` the projection and its transpose:

  .. math::
     R = \mathrm{down}(G), \qquad
     u = s_p\big(\mathrm{up}(\mathrm{Adam}(R)) + s_{in}\,\mathrm{sign}(G - \mathrm{up}(R))\big),

  :math:`\mathrm{Adam}(R) = \hat m / (\sqrt{\hat v} + \epsilon)` with bias corrections; ``sgd`` replaces
  :math:`\mathrm{sign}(\cdot)` by the residual itself, ``no`` drops it (GaLore). Leaves not projected get Adam
  whole. The subspaces (``projection``):

  * ``'svd'`` (GaLore): :math:`P = V_h[:r]` (right side, :math:`R = G P^\top`) or :math:`U[:, :r]` (left,
    :math:`R = P^\top G`) of the current gradient, with :math:`r = \mathrm{round}(\rho k)` of the projected
    dimension :math:`k`. ``proj_side='std'`` projects the smaller dimension (the right one when rows >= cols).
    ``svd_method`` computes that subspace: ``'full'`` (default) the full SVD, as the authors' GaLore projector
    (``torch.linalg.svd``) and the paper; ``'randomized'`` the randomized SVD of Halko, Martinsson & Tropp with
    ``oversampling`` extra columns and ``power_iterations`` passes (:func:`top_singular_vectors`);
    ``'subspace'`` the same iteration warm-started from the previous interval's subspace (subspace iteration).
    Both are approximations whose error falls like :math:`(\sigma_{r+p+1}/\sigma_r)^{2q+1}`; they cost
    :math:`O(mn(r+p))` per pass instead of the full SVD's :math:`O(mn\min(m, n))`.
  * ``'random'``: Haar-random orthonormal :math:`P` of the same shape. ``'randperm'``: random coordinates of
    that side (rows of a permutation matrix).
  * ``'columns'`` / ``'rows'``: :math:`\lfloor\rho n\rfloor` random columns (rows) of the array as stored (the
    authors' ``CoordAdamW``; for flax's ``(in, out)`` kernels columns are output units).
  * ``'blocks'`` (the authors' ``BlockAdamW``, BAdam-like): :math:`\mathrm{round}(\rho N)` of the :math:`N`
    projected tensors are active (whole-tensor Adam, state always reset at a switch), the others take the
    inactive rule; ``block_order`` ``'random'``, ``'ascending'`` or ``'descending'`` (tree-flatten order).

  State is Adam's two moments on the active part only, plus :math:`P` (or indices): for a matrix of shape
  :math:`m \times n` projected on the right, :math:`2mr + rn` numbers instead of :math:`2mn`, proportional to
  :math:`\rho`. Conventions of the authors' code kept: the SVD refresh uses the current gradient; ``round``
  for GaLore ranks but ``int`` for coordinates; :math:`\mathrm{sign}(0) = 0`. The SVD runs in the gradient's
  dtype (at least float32; the authors' code always uses float32, so float64 runs differ from theirs at
  ~1e-7). Projected leaves (``projected``) default to every 2-D leaf; the authors project the weights of
  ``nn.Linear`` layers in attention/MLP blocks, everything else (conv kernels, vectors, scalars) gets AdamW.
  Random choices come from ``seed`` folded with the step count, so a run is reproducible bit for bit.

  Args:
    density: :math:`\rho \in [0, 1]`, the fraction of each projected dimension (or of the tensors, for blocks)
      trained with Adam.
    update_gap: steps between projector refreshes.
    projection: one of ``'svd'``, ``'random'``, ``'randperm'``, ``'columns'``, ``'rows'``, ``'blocks'``.
    proj_side: ``'std'``, ``'reverse_std'``, ``'right'`` or ``'left'`` (``'svd'``, ``'random'``,
      ``'randperm'``).
    b1: Adam's :math:`\beta_1`.
    b2: Adam's :math:`\beta_2`.
    eps: Adam's :math:`\epsilon`, added to :math:`\sqrt{\hat v}`.
    reset_statistics: zero Adam's moments and step count of projected leaves at each refresh.
    inactive_update_rule: ``'sign_sgd'``, ``'sgd'`` or ``'no'``.
    inactive_lr_scale: :math:`s_{in}`, the step of the inactive part relative to the active one.
    proj_params_lr_scale: :math:`s_p`, the step of projected leaves relative to the others.
    block_order: order in which ``'blocks'`` activates tensors.
    projected: which leaves are projected: ``None`` (2-D leaves), a tree of bools, or a function of the
      updates returning one.
    seed: seed of the random projections and block orders.
    mu_dtype: dtype of Adam's moments (default: the parameters').
    svd_method: ``'full'``, ``'randomized'`` or ``'subspace'`` (``'svd'`` projection only).
    oversampling: extra columns of the randomized range finder (``'randomized'``, ``'subspace'``); ``None``
      is 10 (a static integer: it fixes shapes).
    power_iterations: power iterations of the randomized range finder (``'randomized'``, ``'subspace'``);
      ``None`` is 2 (static).

  Returns:
    An ``optax.GradientTransformation`` with state :class:`FrugalState`.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from optim import scale_by_frugal
    >>> params = {'w': jnp.zeros((8, 4)), 'b': jnp.zeros(4)}
    >>> tx = scale_by_frugal(density=0.5)
    >>> state = tx.init(params)
    >>> jax.tree.map(jnp.shape, (state.mu, state.projector))  # Adam on 2 of 4 directions of w
    ({'b': (4,), 'w': (8, 2)}, {'b': MaskedNode(), 'w': (2, 4)})
  """
  with checks.owner('scale_by_frugal') as what:
    checks.check('density', density, lambda v: 0 <= v <= 1, 'in [0, 1]')
    checks.check('update_gap', update_gap, lambda v: v >= 1 and v == int(v), 'an integer >= 1')
    for name, value in (('b1', b1), ('b2', b2)):
      checks.check(name, value, lambda v: 0 <= v < 1, 'in [0, 1)')
    for name, value in (('eps', eps), ('inactive_lr_scale', inactive_lr_scale),
                        ('proj_params_lr_scale', proj_params_lr_scale)):
      checks.check(name, value, lambda v: v >= 0, 'non-negative and finite')
    checks.one_of('projection', projection, PROJECTIONS)
    checks.one_of('proj_side', proj_side, PROJ_SIDES)
    checks.one_of('inactive_update_rule', inactive_update_rule, INACTIVE_RULES)
    checks.one_of('block_order', block_order, BLOCK_ORDERS)
    checks.one_of('svd_method', svd_method, SVD_METHODS)
    for name, value in (('oversampling', oversampling), ('power_iterations', power_iterations)):
      if value is not None:
        checks.check(name, value, lambda v: v >= 0 and v == int(v), 'an integer >= 0')
  blocks = projection == 'blocks'
  oversampling = OVERSAMPLING if oversampling is None else int(oversampling)
  power_iterations = POWER_ITERATIONS if power_iterations is None else int(power_iterations)

  def zeros(shape, like):
    return jnp.zeros(shape, mu_dtype or like.dtype)

  def init_fn(params):
    flat, treedef = jax.tree.flatten(params)
    proj = _projected_leaves(projected, params)
    mu, projector, proj_shapes = [], [], []
    for x, p in zip(flat, proj):
      if not p:
        mu.append(zeros(x.shape, x))
        projector.append(optax.MaskedNode())
      elif blocks:
        mu.append(optax.MaskedNode())
        projector.append(optax.MaskedNode())
        proj_shapes.append(x.shape)
      else:
        spec = _leaf_spec(x.shape, projection, proj_side, float(density))
        down_shape = (x.shape[0], spec.rank) if spec.side == 'right' else (spec.rank, x.shape[1])
        mu.append(zeros(down_shape, x))
        if spec.kind == 'index':
          projector.append(jnp.zeros((spec.rank,), jnp.int32))
        else:
          p_shape = (spec.rank, x.shape[1]) if spec.side == 'right' else (x.shape[0], spec.rank)
          projector.append(jnp.zeros(p_shape, _compute_dtype(x.dtype)))
    active = block_mu = block_nu = optax.MaskedNode()
    if proj_shapes:
      num_active, length = _block_layout(proj_shapes, float(density))
      dtype = mu_dtype or jnp.result_type(*[x for x, p in zip(flat, proj) if p])
      active = jnp.zeros((num_active,), jnp.int32)
      block_mu = block_nu = jnp.zeros((length,), dtype)
    mu = jax.tree.unflatten(treedef, mu)
    return FrugalState(count=jnp.zeros([], jnp.int32), key=jax.random.key(seed), mu=mu,
                       nu=jax.tree.map(jnp.copy, mu), projector=jax.tree.unflatten(treedef, projector),
                       active=active, block_mu=block_mu, block_nu=block_nu)

  def adam_leaf(g, mu, nu, t):
    cd = _compute_dtype(g.dtype)
    d, mu2, nu2 = _adam(g.astype(cd), mu.astype(cd), nu.astype(cd), t, b1, b2, eps)
    return d.astype(g.dtype), mu2.astype(mu.dtype), nu2.astype(nu.dtype)

  def projected_leaf(g, mu, nu, pr, key, refresh, t):
    """Adam on ``down(g)`` in the (possibly refreshed) subspace, the inactive rule on the residual."""
    spec = _spec_from_state(g.shape, projection, proj_side, pr)
    pr = jax.lax.cond(refresh, lambda: _new_projector(g, pr, spec, projection, key, svd_method, oversampling,
                                                      power_iterations).astype(pr.dtype), lambda: pr)
    cd = _compute_dtype(g.dtype)
    g_c = g.astype(cd)
    p_c = pr.astype(cd) if spec.kind == 'matrix' else pr
    low = _down(g_c, p_c, spec)
    mu_c, nu_c = mu.astype(cd), nu.astype(cd)
    if reset_statistics:
      mu_c, nu_c = jnp.where(refresh, 0, mu_c), jnp.where(refresh, 0, nu_c)
    d, mu_c, nu_c = _adam(low, mu_c, nu_c, t, b1, b2, eps)
    u = _up(d, p_c, spec, g.shape)
    if inactive_update_rule != 'no':
      u = u + inactive_lr_scale * _inactive(g_c - _up(low, p_c, spec, g.shape), inactive_update_rule)
    return (proj_params_lr_scale * u).astype(g.dtype), mu_c.astype(mu.dtype), nu_c.astype(nu.dtype), pr

  def update_fn(updates, state, params=None):
    del params
    flat, treedef = jax.tree.flatten(updates)
    try:  # the moments have the updates' structure, with low-rank or masked leaves where projected
      mus = treedef.flatten_up_to(state.mu)
    except (ValueError, TypeError) as error:
      raise ValueError(f'{what}: the updates tree {treedef} does not match the tree the state was initialised '
                       f'with ({error})') from None
    nus = treedef.flatten_up_to(state.nu)
    projectors = treedef.flatten_up_to(state.projector)
    proj = _projected_leaves(projected, updates)
    count = state.count
    refresh = count % update_gap == 0  # at steps 1, gap + 1, ... (the authors' state['step'] % update_gap)
    global_t = optax.safe_increment(count)
    local_t = (count % update_gap + 1) if reset_statistics else global_t

    out, new_mu, new_nu, new_proj = list(flat), list(mus), list(nus), list(projectors)
    block_leaves = []
    for i, (g, mu, nu, pr, p) in enumerate(zip(flat, mus, nus, projectors, proj)):
      if not p:
        out[i], new_mu[i], new_nu[i] = adam_leaf(g, mu, nu, global_t)
      elif blocks:
        block_leaves.append(i)
      else:
        key = jax.random.fold_in(jax.random.fold_in(state.key, count), i)
        out[i], new_mu[i], new_nu[i], new_proj[i] = projected_leaf(g, mu, nu, pr, key, refresh, local_t)

    active, block_mu, block_nu = state.active, state.block_mu, state.block_nu
    if block_leaves:
      block_out, active, block_mu, block_nu = _blocks_update([flat[i] for i in block_leaves], state, refresh)
      for i, u in zip(block_leaves, block_out):
        out[i] = u

    unflatten = lambda leaves: jax.tree.unflatten(treedef, leaves)
    new_state = FrugalState(count=global_t, key=state.key, mu=unflatten(new_mu), nu=unflatten(new_nu),
                            projector=unflatten(new_proj), active=active, block_mu=block_mu, block_nu=block_nu)
    return unflatten(out), new_state

  def _blocks_update(grads, state, refresh):
    """Whole-tensor Adam for the active tensors (moments packed in the flat buffers), the rule for the rest."""
    num_active, length = state.active.shape[0], state.block_mu.shape[0]
    indices = jax.lax.cond(
        refresh, lambda: _active_blocks(state.count, state.key, len(grads), num_active, update_gap, block_order),
        lambda: state.active)
    active = jnp.zeros(len(grads), bool).at[indices].set(True)
    sizes = jnp.array([g.size for g in grads])
    offsets = jnp.cumsum(active * sizes) - active * sizes  # packed in tree order
    t = state.count % update_gap + 1  # a switch always resets the moments (the authors' _deactivate_param)
    buf_mu = jnp.where(refresh, 0, state.block_mu) if length else state.block_mu
    buf_nu = jnp.where(refresh, 0, state.block_nu) if length else state.block_nu
    outs = []
    for j, g in enumerate(grads):
      cd = _compute_dtype(g.dtype)
      g_c = g.astype(cd)

      def adam_branch(bufs, g_c=g_c, j=j):
        b_mu, b_nu = bufs
        take = lambda b: jax.lax.dynamic_slice(b, (offsets[j],), (g_c.size,)).reshape(g_c.shape).astype(cd)
        d, mu, nu = _adam(g_c, take(b_mu), take(b_nu), t, b1, b2, eps)
        put = lambda b, x: jax.lax.dynamic_update_slice(b, x.ravel().astype(b.dtype), (offsets[j],))
        return d, (put(b_mu, mu), put(b_nu, nu))

      def inactive_branch(bufs, g_c=g_c):
        return inactive_lr_scale * _inactive(g_c, inactive_update_rule), bufs

      if length == 0:
        u, _ = inactive_branch((buf_mu, buf_nu))
      else:
        u, (buf_mu, buf_nu) = jax.lax.cond(active[j], adam_branch, inactive_branch, (buf_mu, buf_nu))
      outs.append((proj_params_lr_scale * u).astype(g.dtype))
    return outs, indices, buf_mu, buf_nu

  return optax.GradientTransformation(init_fn, update_fn)


def frugal(learning_rate: optax.ScalarOrSchedule, density: float = 0.25, update_gap: int = 200,
           projection: str = 'svd', proj_side: str = 'std', b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
           weight_decay: float = 0.0, reset_statistics: bool = True, inactive_update_rule: str = 'sign_sgd',
           inactive_lr_scale: float = 1.0, proj_params_lr_scale: float = 1.0, block_order: str = 'random',
           projected: Any = None, seed: int = 0, mu_dtype: Any = None, svd_method: str = 'full',
           oversampling: int | None = None, power_iterations: int | None = None) -> optax.GradientTransformation:
  r"""FRUGAL (arXiv 2411.07837) with Adam as the state-full and signSGD as the state-free optimizer.

  ``chain(scale_by_frugal, add_decayed_weights, scale_by_learning_rate)``: every leaf decays as
  :math:`\theta(1 - \eta\lambda)` (not scaled by ``proj_params_lr_scale``, as in the authors' code); the
  active part of a projected leaf moves by :math:`-\eta s_p \mathrm{up}(\mathrm{Adam}(R))`, the rest by
  :math:`-\eta s_p s_{in} \mathrm{sign}(G - \mathrm{up}(R))`. See :func:`scale_by_frugal`.

  Args:
    learning_rate: step size or schedule.
    density: fraction :math:`\rho` trained with Adam.
    update_gap: steps between projector refreshes.
    projection: ``'svd'``, ``'random'``, ``'randperm'``, ``'columns'``, ``'rows'`` or ``'blocks'``.
    proj_side: ``'std'``, ``'reverse_std'``, ``'right'`` or ``'left'``.
    b1: Adam's :math:`\beta_1`.
    b2: Adam's :math:`\beta_2`.
    eps: Adam's :math:`\epsilon`.
    weight_decay: decoupled weight decay :math:`\lambda`.
    reset_statistics: reset Adam's moments at each refresh.
    inactive_update_rule: ``'sign_sgd'``, ``'sgd'`` or ``'no'``.
    inactive_lr_scale: step of the inactive part relative to the active one.
    proj_params_lr_scale: step of projected leaves relative to the others.
    block_order: ``'random'``, ``'ascending'`` or ``'descending'`` (``'blocks'`` only).
    projected: which leaves are projected (default: 2-D leaves).
    seed: seed of the random choices.
    mu_dtype: dtype of Adam's moments.
    svd_method: ``'full'`` (the authors' code), ``'randomized'`` or ``'subspace'``; see :func:`scale_by_frugal`.
    oversampling: extra columns of the randomized SVD (``None``: 10).
    power_iterations: power iterations of the randomized SVD (``None``: 2).

  Returns:
    An ``optax.GradientTransformation``.

  Example:
    >>> import jax, jax.numpy as jnp, optax
    >>> from optim import frugal
    >>> params = {'w': jnp.ones((6, 4)), 'b': jnp.zeros(4)}
    >>> tx = frugal(1e-3, density=0.5, update_gap=10)
    >>> grads = jax.grad(lambda p: jnp.sum((p['w'] @ p['b'] - 1.0) ** 2) + jnp.sum(p['w'] ** 2))(params)
    >>> u, state = tx.update(grads, tx.init(params), params)
    >>> jax.tree.map(jnp.shape, optax.apply_updates(params, u))
    {'b': (4,), 'w': (6, 4)}
  """
  with checks.owner('frugal'):
    checks.learning_rate(learning_rate)
    checks.non_negative('weight_decay', weight_decay)
    decay = [] if isinstance(weight_decay, (int, float)) and weight_decay == 0 else [
        optax.add_decayed_weights(weight_decay)]
    return optax.chain(
        scale_by_frugal(density, update_gap, projection, proj_side, b1, b2, eps, reset_statistics,
                        inactive_update_rule, inactive_lr_scale, proj_params_lr_scale, block_order, projected, seed,
                        mu_dtype, svd_method, oversampling, power_iterations),
        *decay, optax.scale_by_learning_rate(learning_rate))
