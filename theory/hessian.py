"""Hessian spectra of small MLPs: exact H, Gauss-Newton part and residual, SLQ, outliers, batch Hessians.

Exact, float64 experiments on networks small enough for a dense ``eigh`` (1-3k parameters), checking the
claims of Sagun et al. (arXiv 1706.04454) and Granziol, Zohren & Roberts (arXiv 2006.09092) against dense
oracles, with the matrix-free estimators taken from :mod:`optim` (``optim.curvature.hessian_matvec``,
``optim.lanczos.slq`` / ``lanczos``):

* :func:`exact_decomposition`: ``H = G + R`` with the generalised Gauss-Newton part
  ``G = (1/N) sum_i J_i^T A_i J_i`` (``A_i = diag(p_i) - p_i p_i^T``, the softmax cross-entropy Hessian in
  logit space; PSD) and the residual ``R = (1/N) sum_i sum_c (p_ic - 1{c = y_i}) d^2 z_ic / dw^2``.
* :func:`slq_convergence`: Wasserstein-1 distance between the SLQ spectral measure and the exact one as the
  Lanczos steps and probes grow.
* Outliers (:func:`class_decomposition`, :func:`outliers_vs_classes`). **Counting rule, fixed before the
  sweeps:** an eigenvalue of ``H`` is an outlier iff it exceeds the bulk edge ``lambda_max(G_within)``, where
  Papyan's class decomposition (arXiv 1901.08244) splits the GGN into ``G = G_between + G_within``: with the
  per-sample factors ``U_i = A_i^{1/2} J_i`` (``k x P``), ``G_between = sum_y pi_y M_y^T M_y`` built from the
  class means ``M_y = mean_{i: y_i = y} U_i`` and ``G_within`` from the deviations ``U_i - M_{y_i}``. Because
  ``1^T A_i^{1/2} = 0``, each ``M_y`` has rank ``<= k - 1``; the prediction checked is ``k - 1`` outliers
  (Sagun et al. say "the number of classes"). A random-label baseline (``lambda_max`` of the same network
  trained on shuffled labels) is reported next to it: with cross-entropy the network cannot fit shuffled labels,
  its residuals stay large and its ``lambda_max`` exceeded every true-label eigenvalue in all our runs, so it
  counts no outliers and is not the rule.
* :func:`bulk_vs_width`: the bulk and the outliers as the hidden width grows at fixed data.
* :func:`batch_sharpness`: ``lambda_max`` of mini-batch Hessians ``H_B`` (batches drawn without replacement)
  against ``B``, with Granziol et al.'s spiked random-matrix prediction: ``H_B = H + E``, ``E`` Wigner-like with
  ``s^2 = p_B E_i ||H_i - H||_F^2 / P`` and ``p_B = (N - B) / (B (N - 1))`` (the exact finite-population
  entry variance), giving ``lambda_max(H_B) ~ beta + s^2 / beta`` when ``beta = lambda_max(H) > s`` and the
  semicircle edge ``2 s`` otherwise. Measured (P = N = 600): the formula holds near ``B = N`` but underestimates
  ``lambda_max(H_B)`` six-fold at ``B = 8``. Per-sample Hessians have rank about ``k``, so the batch noise is
  Wishart-like, not Wigner, and ``lambda_max(H_B)`` follows ``1/B`` there: the linear-scaling conclusion without
  the Wigner formula.

Every experiment function runs in float64 (``jax.enable_x64``) whatever the caller's setting, and returns a
dict of NumPy arrays and floats; the ``plot_*`` functions take those dicts. :func:`run` runs them all on
synthetic k-cluster data (``small=True`` for a notebook-sized setting).
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
import numpy as np
import optax

from optim import curvature
from optim import lanczos as lanczos_lib

PyTree = Any


def _float64(fn):
  """Runs ``fn`` with ``jax_enable_x64`` on: every experiment here is a float64 computation."""

  @functools.wraps(fn)
  def wrapper(*args, **kwargs):
    with jax.enable_x64(True):
      return fn(*args, **kwargs)

  return wrapper


# ----------------------------------------------------------------------------------------------- data


@_float64
def gaussian_clusters(seed: int, num_points: int, dim: int, num_classes: int, separation: float = 1.5,
                      noise: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
  """k Gaussian clusters, one per class: ``x = mu_y + noise * N(0, I)`` with ``||mu_y|| = separation``.

  Args:
    seed: integer seed.
    num_points: number of points ``N`` (classes balanced: ``y_i = i mod k``).
    dim: input dimension.
    num_classes: number of clusters and classes ``k``.
    separation: norm of each (random-direction) cluster mean; with ``noise = 1``, 1.5 gives overlapping
      clusters (a network reaches 80-98% training accuracy), 3 nearly separable ones.
    noise: within-cluster standard deviation.

  Returns:
    ``(x, y)``: float64 inputs ``(N, dim)`` and int32 labels ``(N,)``.

  Example:
    >>> x, y = gaussian_clusters(0, num_points=6, dim=4, num_classes=3)
    >>> x.shape, y.tolist()
    ((6, 4), [0, 1, 2, 0, 1, 2])
  """
  for name, value in (('num_points', num_points), ('dim', dim), ('num_classes', num_classes)):
    if value < 1:
      raise ValueError(f'{name} must be >= 1, got {value}')
  if separation < 0 or noise < 0:
    raise ValueError(f'separation and noise must be >= 0, got {separation}, {noise}')
  k_mean, k_noise = jax.random.split(jax.random.key(seed))
  means = jax.random.normal(k_mean, (num_classes, dim))
  means = separation * means / jnp.linalg.norm(means, axis=1, keepdims=True)
  y = jnp.arange(num_points) % num_classes
  x = means[y] + noise * jax.random.normal(k_noise, (num_points, dim))
  return np.asarray(x, np.float64), np.asarray(y, np.int32)


def pca_features(x: np.ndarray, dim: int) -> np.ndarray:
  """Projects flattened inputs on their top ``dim`` principal components, scaled to unit mean variance.

  Args:
    x: inputs ``(N, ...)`` (images are flattened).
    dim: number of components kept.

  Returns:
    float64 features ``(N, dim)``, centred, with ``mean_j Var(x_j) = 1``.

  Example:
    >>> import numpy as np
    >>> z = pca_features(np.random.default_rng(0).normal(size=(50, 3, 3)), 4)
    >>> z.shape, round(float(z.var(0).mean()), 6)
    ((50, 4), 1.0)
  """
  x = np.asarray(x, np.float64).reshape(len(x), -1)
  if not 1 <= dim <= min(x.shape):
    raise ValueError(f'dim must be in [1, {min(x.shape)}], got {dim}')
  x = x - x.mean(0)
  _, _, vt = np.linalg.svd(x, full_matrices=False)
  z = x @ vt[:dim].T
  return z / np.sqrt(z.var(0).mean())


# ---------------------------------------------------------------------------------------------- model


def init_mlp(seed: int, sizes: Sequence[int]) -> tuple[dict[str, jax.Array], ...]:
  """A tanh MLP ``sizes[0] -> ... -> sizes[-1]``: weights ``N(0, 1/fan_in)``, zero biases.

  tanh (not ReLU) keeps the Hessian smooth, so the residual ``H - G`` is not an artefact of kinks.

  Args:
    seed: integer seed.
    sizes: layer widths, input first, number of classes last.

  Returns:
    A tuple of ``{'w': (fan_in, fan_out), 'b': (fan_out,)}`` dicts (in the current default float dtype).

  Example:
    >>> p = init_mlp(0, [4, 3, 2])
    >>> [layer['w'].shape for layer in p]
    [(4, 3), (3, 2)]
  """
  if len(sizes) < 2 or min(sizes) < 1:
    raise ValueError(f'sizes must list >= 2 positive widths, got {sizes}')
  keys = jax.random.split(jax.random.key(seed), len(sizes) - 1)
  return tuple({'w': jax.random.normal(k, (a, b)) / math.sqrt(a), 'b': jnp.zeros(b)}
               for k, a, b in zip(keys, sizes[:-1], sizes[1:]))


def mlp_logits(params: PyTree, x: jax.Array) -> jax.Array:
  """Logits ``(N, k)`` of the tanh MLP of :func:`init_mlp`."""
  for layer in params[:-1]:
    x = jnp.tanh(x @ layer['w'] + layer['b'])
  return x @ params[-1]['w'] + params[-1]['b']


def cross_entropy(params: PyTree, x: jax.Array, y: jax.Array) -> jax.Array:
  """Mean softmax cross-entropy of the MLP on ``(x, y)``."""
  return optax.softmax_cross_entropy_with_integer_labels(mlp_logits(params, x), y).mean()


@functools.partial(jax.jit, static_argnames=('steps',))
def _gd(params, x, y, steps, learning_rate):
  def step(p, _):
    loss, g = jax.value_and_grad(cross_entropy)(p, x, y)
    return jax.tree.map(lambda a, b: a - learning_rate * b, p, g), loss

  return jax.lax.scan(step, params, None, length=steps)


@_float64
def train(params: PyTree, x: np.ndarray, y: np.ndarray, steps: int, learning_rate: float
          ) -> tuple[PyTree, np.ndarray]:
  """Full-batch gradient descent on the mean cross-entropy, in float64.

  Args:
    params: initial MLP parameters.
    x: inputs ``(N, d)``.
    y: integer labels ``(N,)``.
    steps: number of GD steps.
    learning_rate: step size.

  Returns:
    ``(params, losses)``: float64 parameters after ``steps`` steps, and the loss before each step.
  """
  params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
  params, losses = _gd(params, jnp.asarray(x, jnp.float64), jnp.asarray(y), steps, learning_rate)
  return params, np.asarray(losses)


# ------------------------------------------------------------------------------------- exact matrices


class Decomposition(NamedTuple):
  """Dense ``P x P`` matrices with ``hessian = gauss_newton + residual`` (order of ``ravel_pytree``)."""
  hessian: np.ndarray
  gauss_newton: np.ndarray
  residual: np.ndarray


def _logit_jacobian(params, x):
  flat, unravel = ravel_pytree(params)
  logits_fn = lambda w: mlp_logits(unravel(w), x)
  return logits_fn(flat), jax.jacrev(logits_fn)(flat)  # (N, k), (N, k, P)


def _softmax_hessians(logits):
  p = jax.nn.softmax(logits)
  return jax.vmap(lambda q: jnp.diag(q) - jnp.outer(q, q))(p)  # (N, k, k), A_i


@jax.jit
def _hessian_and_gauss_newton(params, x, y):
  flat, unravel = ravel_pytree(params)
  h = jax.hessian(lambda w: cross_entropy(unravel(w), x, y))(flat)
  logits, jac = _logit_jacobian(params, x)
  g = jnp.einsum('nkp,nkl,nlq->pq', jac, _softmax_hessians(logits), jac) / x.shape[0]
  return h, g


@_float64
def exact_decomposition(params: PyTree, x: np.ndarray, y: np.ndarray) -> Decomposition:
  """The dense Hessian of the mean cross-entropy and its Gauss-Newton / residual split.

  ``H = jax.hessian`` of the loss in the raveled parameters; ``G = (1/N) sum_i J_i^T A_i J_i`` from the logit
  Jacobians ``J_i`` and ``A_i = diag(p_i) - p_i p_i^T``; ``R = H - G`` is the term
  ``(1/N) sum_i sum_c (p_ic - 1{c = y_i}) d^2 z_ic / dw^2`` that vanishes as the residuals ``p_i - e_{y_i}`` do.

  Args:
    params: MLP parameters.
    x: inputs ``(N, d)``.
    y: integer labels ``(N,)``.

  Returns:
    A :class:`Decomposition` of float64 NumPy arrays.

  Example:
    >>> import numpy as np
    >>> x, y = gaussian_clusters(0, 8, 3, 2)
    >>> d = exact_decomposition(init_mlp(0, [3, 2, 2]), x, y)
    >>> d.hessian.shape, bool(np.linalg.eigvalsh(d.gauss_newton)[0] > -1e-6)   # the GGN is PSD
    ((14, 14), True)
  """
  params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
  h, g = _hessian_and_gauss_newton(params, jnp.asarray(x, jnp.float64), jnp.asarray(y))
  h, g = np.asarray(h), np.asarray(g)
  return Decomposition(h, g, h - g)


@functools.partial(jax.jit, static_argnames=('num_classes',))
def _class_parts(params, x, y, num_classes):
  logits, jac = _logit_jacobian(params, x)

  def sqrt_psd(a):
    e, v = jnp.linalg.eigh(a)
    return (v * jnp.sqrt(jnp.clip(e, 0.0))) @ v.T

  u = jnp.einsum('nkl,nlp->nkp', jax.vmap(sqrt_psd)(_softmax_hessians(logits)), jac)
  onehot = jax.nn.one_hot(y, num_classes, dtype=u.dtype)  # (N, k)
  counts = onehot.sum(0)
  means = jnp.einsum('ny,nkp->ykp', onehot, u) / jnp.maximum(counts, 1.0)[:, None, None]
  dev = u - means[y]
  n = x.shape[0]
  between = jnp.einsum('y,ykp,ykq->pq', counts / n, means, means)
  within = jnp.einsum('nkp,nkq->pq', dev, dev) / n
  return between, within


@_float64
def class_decomposition(params: PyTree, x: np.ndarray, y: np.ndarray, num_classes: int
                        ) -> tuple[np.ndarray, np.ndarray]:
  """Papyan's split of the GGN into between-class and within-class parts: ``G = G_between + G_within``.

  With ``U_i = A_i^{1/2} J_i`` (so ``G = (1/N) sum_i U_i^T U_i``) and class means ``M_y``:
  ``G_between = sum_y pi_y M_y^T M_y`` and ``G_within = (1/N) sum_i (U_i - M_{y_i})^T (U_i - M_{y_i})``.
  The bulk edge of the outlier rule is ``lambda_max(G_within)``.

  Args:
    params: MLP parameters.
    x: inputs ``(N, d)``.
    y: integer labels ``(N,)`` in ``[0, num_classes)``.
    num_classes: ``k``.

  Returns:
    ``(G_between, G_within)``, dense float64 ``P x P`` arrays.
  """
  params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
  between, within = _class_parts(params, jnp.asarray(x, jnp.float64), jnp.asarray(y), num_classes)
  return np.asarray(between), np.asarray(within)


# ------------------------------------------------------------------------------------------- SLQ / W1


def wasserstein1(nodes: np.ndarray, weights: np.ndarray, eigenvalues: np.ndarray) -> float:
  """Exact Wasserstein-1 distance between a discrete measure and the uniform measure on ``eigenvalues``.

  ``W1 = int |F(t) - F_exact(t)| dt`` for the two step CDFs, summed exactly over the merged support.

  Args:
    nodes: support points of the first measure (any shape; e.g. SLQ Ritz values ``(probes, m)``).
    weights: their masses, same shape, summing to one (SLQ weights divided by the probe count).
    eigenvalues: exact eigenvalues, each of mass ``1/P``.

  Returns:
    The distance (same units as the eigenvalues).

  Example:
    >>> import numpy as np
    >>> wasserstein1(np.array([0.0, 2.0]), np.array([0.5, 0.5]), np.array([1.0, 1.0]))
    1.0
  """
  nodes, weights = np.ravel(nodes).astype(np.float64), np.ravel(weights).astype(np.float64)
  eig = np.ravel(eigenvalues).astype(np.float64)
  points = np.concatenate([nodes, eig])
  mass = np.concatenate([weights / weights.sum(), -np.full(eig.size, 1.0 / eig.size)])
  order = np.argsort(points, kind='stable')
  cdf_gap = np.cumsum(mass[order])[:-1]
  return float(np.sum(np.abs(cdf_gap) * np.diff(points[order])))


@functools.partial(jax.jit, static_argnames=('num_steps', 'num_probes'))
def _slq(params, x, y, key, num_steps, num_probes):
  matvec = curvature.hessian_matvec(cross_entropy, params, x, y)
  return lanczos_lib.slq(matvec, params, key, num_steps, num_probes)


@_float64
def slq_convergence(params: PyTree, x: np.ndarray, y: np.ndarray, eigenvalues: np.ndarray,
                    steps: Sequence[int] = (4, 8, 16, 32, 64), probes: Sequence[int] = (1, 4, 16),
                    repeats: int = 3, seed: int = 0) -> dict[str, Any]:
  """W1 distance between the SLQ estimate (``optim.lanczos.slq`` on ``optim.curvature.hessian_matvec``) and
  the exact spectral measure of ``H``, over a grid of Lanczos steps ``m`` and probe counts.

  Args:
    params: MLP parameters.
    x: inputs.
    y: labels.
    eigenvalues: exact eigenvalues of ``H`` (the oracle).
    steps: Lanczos steps per probe.
    probes: numbers of probes.
    repeats: independent SLQ runs averaged per cell (W1 is random through the probes).
    seed: integer seed.

  Returns:
    ``{'steps', 'probes', 'w1' (len(steps), len(probes)), 'w1_std', 'spectral_range', 'nodes', 'weights'}``,
    the last two from the largest cell (for density plots). ``w1`` is the mean over ``repeats`` independent
    runs and ``w1_std`` their standard deviation.
  """
  params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
  x, y = jnp.asarray(x, jnp.float64), jnp.asarray(y)
  most = max(probes)
  w1 = np.zeros((len(steps), len(probes), repeats))
  for i, m in enumerate(steps):
    # One SLQ run per m with repeats * max(probes) independent probes; disjoint blocks of them give the
    # repeats, and the first v probes of a block the v-probe estimate (one compilation per m).
    quad = _slq(params, x, y, jax.random.fold_in(jax.random.key(seed), i), m, most * repeats)
    nodes, weights = np.asarray(quad.nodes), np.asarray(quad.weights)
    for r in range(repeats):
      for j, v in enumerate(probes):
        block = slice(r * most, r * most + v)
        w1[i, j, r] = wasserstein1(nodes[block], weights[block] / v, eigenvalues)
  last = slice(0, most)
  return {'steps': np.asarray(steps), 'probes': np.asarray(probes), 'w1': w1.mean(-1), 'w1_std': w1.std(-1),
          'spectral_range': float(np.ptp(eigenvalues)), 'nodes': nodes[last], 'weights': weights[last] / most}


# --------------------------------------------------------------------------------- spectra, outliers


def _accuracy(params, x, y):
  return float(np.mean(np.asarray(mlp_logits(params, jnp.asarray(x)).argmax(-1)) == np.asarray(y)))


@_float64
def spectrum_experiment(x: np.ndarray, y: np.ndarray, num_classes: int, hidden: Sequence[int] = (24,),
                        steps: int = 300, learning_rate: float = 0.5, seed: int = 0,
                        random_label_baseline: bool = True) -> dict[str, Any]:
  """Trains a tanh MLP by full-batch GD and returns the exact spectra of ``H``, ``G``, ``H - G`` and the outliers.

  Outliers follow the rule in the module docstring: eigenvalues of ``H`` above ``lambda_max(G_within)``.

  Args:
    x: inputs ``(N, d)``.
    y: labels ``(N,)``.
    num_classes: ``k``.
    hidden: hidden widths.
    steps: GD steps.
    learning_rate: GD step size.
    seed: seed of the initialisation (and of the label shuffle of the baseline).
    random_label_baseline: also train on shuffled labels and count eigenvalues above that ``lambda_max``.

  Returns:
    A dict with the eigenvalues ``eig_hessian``, ``eig_gauss_newton``, ``eig_residual`` (ascending),
    ``bulk_edge``, ``num_outliers``, ``outliers``, ``eig_between`` (top ``k^2``), ``loss``, ``accuracy``,
    ``num_params``, ``num_classes``, ``params`` (the trained parameters) and, with the baseline,
    ``random_label_edge`` and ``num_outliers_random_label``.
  """
  params, losses = train(init_mlp(seed, [x.shape[1], *hidden, num_classes]), x, y, steps, learning_rate)
  dec = exact_decomposition(params, x, y)
  eig_h = np.linalg.eigvalsh(dec.hessian)
  between, within = class_decomposition(params, x, y, num_classes)
  edge = float(np.linalg.eigvalsh(within)[-1])
  out = {
      'num_classes': num_classes, 'num_params': int(eig_h.size), 'loss': float(cross_entropy(params, x, y)),
      'accuracy': _accuracy(params, x, y), 'initial_loss': float(losses[0]),
      'eig_hessian': eig_h, 'eig_gauss_newton': np.linalg.eigvalsh(dec.gauss_newton),
      'eig_residual': np.linalg.eigvalsh(dec.residual),
      'eig_between': np.linalg.eigvalsh(between)[::-1][:num_classes ** 2],
      'bulk_edge': edge, 'num_outliers': int(np.sum(eig_h > edge)), 'outliers': eig_h[eig_h > edge][::-1],
      'params': params,
  }
  if random_label_baseline:
    shuffled = np.random.default_rng(seed).permutation(np.asarray(y))
    rparams, _ = train(init_mlp(seed, [x.shape[1], *hidden, num_classes]), x, shuffled, steps, learning_rate)
    redge = float(np.linalg.eigvalsh(exact_decomposition(rparams, x, shuffled).hessian)[-1])
    out['random_label_edge'] = redge
    out['num_outliers_random_label'] = int(np.sum(eig_h > redge))
  return out


def outliers_vs_classes(classes: Sequence[int] = (2, 3, 4, 5, 6, 8, 10), num_points: int = 600, dim: int = 20,
                        hidden: Sequence[int] = (24,), separation: float = 1.5, steps: int = 300,
                        learning_rate: float = 0.5, seeds: Sequence[int] = (0,),
                        random_label_baseline: bool = True) -> dict[str, Any]:
  """Outlier count against the number of classes ``k`` on k-cluster data (rule of the module docstring).

  Args:
    classes: values of ``k``.
    num_points: ``N``.
    dim: input dimension.
    hidden: hidden widths.
    separation: cluster-mean norm (noise 1).
    steps: GD steps.
    learning_rate: GD step size.
    seeds: one data set and initialisation per seed.
    random_label_baseline: also count against the random-label baseline (NaN otherwise).

  Returns:
    ``{'classes', 'num_outliers' (len(classes), len(seeds)), 'num_outliers_random_label', 'bulk_edge',
    'top_eigenvalues' (list of arrays), 'accuracy', 'loss'}``.
  """
  keys = ('num_outliers', 'num_outliers_random_label', 'bulk_edge', 'random_label_edge', 'accuracy', 'loss')
  table = {k: np.full((len(classes), len(seeds)), np.nan) for k in keys}
  tops = []
  for i, k in enumerate(classes):
    for j, s in enumerate(seeds):
      x, y = gaussian_clusters(1000 * s + k, num_points, dim, k, separation)
      r = spectrum_experiment(x, y, k, hidden, steps, learning_rate, seed=s,
                              random_label_baseline=random_label_baseline)
      for name in keys:
        table[name][i, j] = r.get(name, np.nan)
      if j == 0:
        tops.append(r['eig_hessian'][::-1][:k * k + 2])
  return {'classes': np.asarray(classes), 'top_eigenvalues': tops, **table}


def bulk_vs_width(widths: Sequence[int] = (8, 16, 32, 64), num_classes: int = 5, num_points: int = 600,
                  dim: int = 20, separation: float = 1.5, steps: int = 300, learning_rate: float = 0.5,
                  seed: int = 0) -> dict[str, Any]:
  """The spectrum of ``H`` as the hidden width grows at fixed data (Sagun et al.: only the bulk changes).

  Args:
    widths: hidden widths (one hidden layer).
    num_classes: ``k``.
    num_points: ``N``.
    dim: input dimension.
    separation: cluster-mean norm.
    steps: GD steps.
    learning_rate: GD step size.
    seed: data and initialisation seed.

  Returns:
    ``{'widths', 'num_params', 'eigenvalues' (list), 'bulk_edge', 'num_outliers', 'outliers' (list),
    'bulk_mean_abs', 'bulk_rms', 'near_zero_fraction'}``; the bulk is every eigenvalue at or below the edge and
    ``near_zero_fraction`` counts ``|lambda| < 1e-6 lambda_max``.
  """
  x, y = gaussian_clusters(seed, num_points, dim, num_classes, separation)
  out = {k: [] for k in ('num_params', 'eigenvalues', 'bulk_edge', 'num_outliers', 'outliers',
                         'bulk_mean_abs', 'bulk_rms', 'near_zero_fraction', 'accuracy')}
  for w in widths:
    r = spectrum_experiment(x, y, num_classes, (w,), steps, learning_rate, seed, random_label_baseline=False)
    eig = r['eig_hessian']
    bulk = eig[eig <= r['bulk_edge']]
    for name, value in (('num_params', r['num_params']), ('eigenvalues', eig), ('bulk_edge', r['bulk_edge']),
                        ('num_outliers', r['num_outliers']), ('outliers', r['outliers']),
                        ('bulk_mean_abs', float(np.abs(bulk).mean())),
                        ('bulk_rms', float(np.sqrt(np.mean(bulk ** 2)))),
                        ('near_zero_fraction', float(np.mean(np.abs(eig) < 1e-6 * eig[-1]))),
                        ('accuracy', r['accuracy'])):
      out[name].append(value)
  return {'widths': np.asarray(widths), **{k: (v if k in ('eigenvalues', 'outliers') else np.asarray(v))
                                           for k, v in out.items()}}


# ----------------------------------------------------------------------------------- batch Hessians


@jax.jit
def _per_sample_frobenius_sq(params, x, y):
  flat, unravel = ravel_pytree(params)

  def one(xy):
    xi, yi = xy
    h = jax.hessian(lambda w: cross_entropy(unravel(w), xi[None], yi[None]))(flat)
    return jnp.sum(h ** 2)

  return jax.lax.map(one, (x, y), batch_size=16)


def _batch_loss(params, x, y, mask):
  losses = optax.softmax_cross_entropy_with_integer_labels(mlp_logits(params, x), y)
  return jnp.sum(mask * losses) / jnp.sum(mask)


@functools.partial(jax.jit, static_argnames=('num_steps',))
def _top_eigenvalue(params, x, y, mask, key, num_steps):
  # The batch is a 0/1 mask over all N points, so every batch size shares one compilation.
  matvec = curvature.hessian_matvec(_batch_loss, params, x, y, mask)
  values, _ = lanczos_lib.ritz(lanczos_lib.lanczos(matvec, params, key, num_steps))
  return values[-1]


def granziol_prediction(lambda_max: float, per_sample_variance: float, num_params: int, num_points: int,
                        batch_size: int) -> float:
  """Spiked-Wigner prediction of ``lambda_max(H_B)`` (Granziol, Zohren & Roberts, arXiv 2006.09092).

  ``H_B = H + E`` with ``E`` modelled as a Wigner matrix of entry variance ``p_B sigma^2``, where
  ``sigma^2 = E_i ||H_i - H||_F^2 / P^2`` is the mean per-sample entry variance and ``p_B = (N - B)/(B (N - 1))``
  (sampling without replacement). Its semicircle has radius ``2 s`` with ``s^2 = P p_B sigma^2``; a spike
  ``beta = lambda_max(H) > s`` moves to ``beta + s^2 / beta``, a smaller one is swallowed by the edge ``2 s``.
  With ``p_B ~ 1/B`` this is the paper's ``beta + (P/B) sigma^2 / beta``.

  Args:
    lambda_max: ``beta``, the top eigenvalue of the full-data Hessian.
    per_sample_variance: ``E_i ||H_i - H||_F^2``.
    num_params: ``P``.
    num_points: ``N``.
    batch_size: ``B``.

  Returns:
    The predicted top eigenvalue of ``H_B``.

  Example:
    >>> granziol_prediction(1.0, per_sample_variance=4.0, num_params=4, num_points=101, batch_size=1)
    2.0
  """
  p = (num_points - batch_size) / (batch_size * (num_points - 1))
  s = math.sqrt(p * per_sample_variance / num_params)
  return lambda_max + s * s / lambda_max if lambda_max > s else 2.0 * s


@_float64
def batch_sharpness(params: PyTree, x: np.ndarray, y: np.ndarray, hessian: np.ndarray,
                    batch_sizes: Sequence[int] = (8, 16, 32, 64, 128, 256), num_batches: int = 10,
                    lanczos_steps: int = 60, seed: int = 0) -> dict[str, Any]:
  """``lambda_max`` of mini-batch Hessians against ``B``, measured by Lanczos (``optim.lanczos``) on
  ``optim.curvature.hessian_matvec`` of each batch loss, next to the spiked random-matrix prediction.

  Batches are drawn uniformly without replacement. ``E_i ||H_i - H||_F^2`` is exact: every per-sample Hessian
  is formed densely (one at a time) and reduced to its Frobenius norm.

  Args:
    params: MLP parameters.
    x: inputs ``(N, d)``.
    y: labels.
    hessian: the exact full-data Hessian (from :func:`exact_decomposition`).
    batch_sizes: values of ``B`` (``N`` is appended).
    num_batches: batches per ``B``.
    lanczos_steps: Lanczos steps for each top eigenvalue.
    seed: integer seed.

  Returns:
    ``{'batch_sizes', 'lambda_max' (len(B), num_batches), 'prediction', 'lambda_max_full',
    'per_sample_variance', 'num_params', 'inverse_scaling'}``; ``inverse_scaling`` is ``lambda_max(H_B)`` at
    the smallest ``B`` times ``B_min / B`` (the linear-scaling reference ``eta_max ~ B``).
  """
  params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
  x, y = jnp.asarray(x, jnp.float64), jnp.asarray(y)
  n, p = x.shape[0], hessian.shape[0]
  sizes = sorted({int(b) for b in batch_sizes if 1 <= b < n} | {n})
  beta = float(np.linalg.eigvalsh(hessian)[-1])
  variance = float(np.mean(np.asarray(_per_sample_frobenius_sq(params, x, y))) - np.sum(hessian ** 2))
  rng = np.random.default_rng(seed)
  lam = np.zeros((len(sizes), num_batches))
  for i, b in enumerate(sizes):
    for j in range(num_batches if b < n else 1):
      mask = np.zeros(n)
      mask[rng.choice(n, b, replace=False)] = 1.0
      lam[i, j] = float(_top_eigenvalue(params, x, y, jnp.asarray(mask), jax.random.key(seed + j), lanczos_steps))
    if b == n:
      lam[i, :] = lam[i, 0]
  pred = np.array([granziol_prediction(beta, variance, p, n, b) for b in sizes])
  mean = lam.mean(1)
  return {'batch_sizes': np.asarray(sizes), 'lambda_max': lam, 'prediction': pred, 'lambda_max_full': beta,
          'per_sample_variance': variance, 'num_params': p,
          'inverse_scaling': mean[0] * sizes[0] / np.asarray(sizes, np.float64)}


# -------------------------------------------------------------------------------------------- driver


def run(small: bool = False, seed: int = 0) -> dict[str, Any]:
  """Every Hessian-spectrum experiment on synthetic k-cluster data.

  Args:
    small: a notebook-sized setting (a few seconds per part) instead of the full-size figures.
    seed: integer seed.

  Returns:
    ``{'spectrum', 'slq', 'classes', 'width', 'batch'}`` result dicts for the ``plot_*`` functions.
  """
  if small:
    n, dim, k, hidden, classes, widths, steps = 300, 10, 3, (16,), (2, 3, 4), (8, 16), (4, 16)
    batches, probes = (8, 32), (1, 4)
  else:
    n, dim, k, hidden, classes, widths, steps = 600, 20, 5, (24,), (2, 3, 4, 5, 6, 8, 10), (8, 16, 32, 64), (
        4, 8, 16, 32, 64, 128)
    batches, probes = (8, 16, 32, 64, 128, 256), (1, 4, 16)
  x, y = gaussian_clusters(seed, n, dim, k)
  spectrum = spectrum_experiment(x, y, k, hidden, seed=seed, random_label_baseline=not small)
  params = spectrum.pop('params')
  hessian = exact_decomposition(params, x, y).hessian
  return {
      'spectrum': spectrum,
      'slq': slq_convergence(params, x, y, spectrum['eig_hessian'], steps, probes, repeats=2 if small else 3,
                             seed=seed),
      'classes': outliers_vs_classes(classes, n, dim, hidden, seeds=(seed,), random_label_baseline=not small),
      'width': bulk_vs_width(widths, k, n, dim, seed=seed),
      'batch': batch_sharpness(params, x, y, hessian, batches, num_batches=3 if small else 10, seed=seed),
  }


# --------------------------------------------------------------------------------------------- plots


def _no_labels():
  import matplotlib.ticker
  # Default minor log-scale labels collide on ranges of about a decade; label only 2x and 5x.
  def fmt(v, _):
    lead = v / 10 ** math.floor(math.log10(v)) if v > 0 else 0.0
    return f'{v:g}' if round(lead) in (2, 5) else ''
  return matplotlib.ticker.FuncFormatter(fmt)


def _axes(ax):
  import matplotlib.pyplot as plt
  if ax is None:
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    return fig, ax
  return ax.figure, ax


def plot_spectrum(spectrum: dict[str, Any], slq: dict[str, Any] | None = None, ax=None):
  """Log-density of the exact spectrum of ``H`` (histogram), the SLQ estimate, outliers and the bulk edge."""
  fig, ax = _axes(ax)
  eig = spectrum['eig_hessian']
  lo, hi = eig.min(), eig.max()
  pad = 0.05 * (hi - lo)
  bins = np.linspace(lo - pad, hi + pad, 120)
  counts, _, _ = ax.hist(eig, bins=bins, density=True, color='0.6', label=f'exact eig(H), P={eig.size}')
  top = counts.max()
  if slq is not None:
    grid = np.linspace(lo - pad, hi + pad, 2000)
    sigma = (hi - lo) / 150
    dens = np.sum(slq['weights'][..., None] * np.exp(-0.5 * ((grid - slq['nodes'][..., None]) / sigma) ** 2),
                  axis=(0, 1)) / (sigma * math.sqrt(2 * math.pi))
    ax.plot(grid, dens, 'C0', lw=1.2, label=f"SLQ (m={slq['steps'][-1]}, {slq['probes'][-1]} probes)")
    top = max(top, dens.max())
  ax.axvline(spectrum['bulk_edge'], color='k', ls='--', lw=1, label='bulk edge $\\lambda_{max}(G_{within})$')
  for o in spectrum['outliers']:
    ax.axvline(o, color='C3', lw=1, alpha=0.8)
  ax.plot([], [], 'C3', label=f"{spectrum['num_outliers']} outliers (k={spectrum['num_classes']})")
  ax.set_yscale('log')
  ax.set_ylim(1e-3, 3 * top)
  ax.set_xlabel('eigenvalue')
  ax.set_ylabel('density')
  ax.legend(fontsize=7)
  return fig


def plot_decomposition(spectrum: dict[str, Any], ax=None):
  """Sorted eigenvalues of ``H``, the Gauss-Newton part ``G`` and the residual ``H - G`` (symlog scale)."""
  fig, ax = _axes(ax)
  for name, label in (('eig_hessian', 'H'), ('eig_gauss_newton', 'G (GGN)'), ('eig_residual', 'H - G')):
    ax.plot(spectrum[name][::-1], label=label)
  ax.set_yscale('symlog', linthresh=1e-6)
  ax.set_xscale('log')
  ax.xaxis.set_minor_formatter(_no_labels())
  ax.set_xlabel('index (descending)')
  ax.set_ylabel('eigenvalue')
  ax.legend(fontsize=8)
  return fig


def plot_slq_error(slq: dict[str, Any], ax=None):
  """W1(SLQ, exact) / spectral range against Lanczos steps, one line per probe count."""
  fig, ax = _axes(ax)
  for j, v in enumerate(slq['probes']):
    ax.errorbar(slq['steps'], slq['w1'][:, j] / slq['spectral_range'],
                yerr=slq['w1_std'][:, j] / slq['spectral_range'], marker='o', ms=3, label=f'{v} probes')
  ax.set_xscale('log')
  ax.xaxis.set_minor_formatter(_no_labels())
  ax.set_yscale('log')
  ax.set_xlabel('Lanczos steps m')
  ax.set_ylabel('W1 / spectral range')
  ax.legend(fontsize=8)
  return fig


def plot_outliers_vs_classes(classes: dict[str, Any], ax=None):
  """Outlier count against the number of classes, with the ``k - 1`` and ``k`` lines."""
  fig, ax = _axes(ax)
  k = classes['classes']
  counts = classes['num_outliers']
  ax.plot(k, counts.mean(1), 'o-', label='outliers above $\\lambda_{max}(G_{within})$')
  if np.all(np.isfinite(classes['num_outliers_random_label'])):
    ax.plot(k, classes['num_outliers_random_label'].mean(1), 's:', label='above random-label $\\lambda_{max}$')
  ax.plot(k, k - 1, 'k--', lw=1, label='k - 1')
  ax.plot(k, k, 'k:', lw=1, label='k')
  ax.set_xlabel('number of classes k')
  ax.set_ylabel('number of outliers')
  ax.legend(fontsize=8)
  return fig


def plot_bulk_vs_width(width: dict[str, Any], ax=None):
  """Bulk density (histogram of eigenvalues below the edge) per hidden width, outliers as ticks."""
  fig, ax = _axes(ax)
  for i, w in enumerate(width['widths']):
    eig = width['eigenvalues'][i]
    bulk = eig[eig <= width['bulk_edge'][i]]
    ax.hist(bulk, bins=80, density=True, histtype='step', color=f'C{i}',
            label=f"width {w} (P={width['num_params'][i]})")
    for o in width['outliers'][i]:
      ax.axvline(o, color=f'C{i}', lw=0.8, ymax=0.15)
  ax.set_yscale('log')
  ax.set_xlabel('eigenvalue')
  ax.set_ylabel('bulk density')
  ax.legend(fontsize=7)
  return fig


def plot_batch_sharpness(batch: dict[str, Any], ax=None):
  """``lambda_max(H_B)`` against ``B`` (5-95% band over batches), the RMT prediction and ``lambda_max(H)``."""
  fig, ax = _axes(ax)
  b = batch['batch_sizes']
  lam = batch['lambda_max']
  ax.fill_between(b, np.percentile(lam, 5, axis=1), np.percentile(lam, 95, axis=1), alpha=0.3, color='C0')
  ax.plot(b, lam.mean(1), 'o-', color='C0', label='measured $\\lambda_{max}(H_B)$ (Lanczos)')
  ax.plot(b, batch['prediction'], 'k--', label='spiked-Wigner prediction')
  ax.plot(b, batch['inverse_scaling'], ':', color='C2', label='$\\propto 1/B$')
  ax.axhline(batch['lambda_max_full'], color='C3', lw=1, label='$\\lambda_{max}(H)$')
  ax.set_xscale('log')
  ax.xaxis.set_minor_formatter(_no_labels())
  ax.set_yscale('log')
  ax.set_xlabel('batch size B')
  ax.set_ylabel('largest eigenvalue')
  ax.legend(fontsize=8)
  return fig
