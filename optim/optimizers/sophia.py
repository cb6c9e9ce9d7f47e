"""Sophia: momentum preconditioned by a periodically refreshed Hessian-diagonal estimate, clipped per coordinate.

Liu, Li, Hall, Liang & Ma, "Sophia: A Scalable Stochastic Second-order Optimizer for Language Model
Pre-training", arXiv 2305.14342. Algorithm 3 of the paper, with either of its two estimators:

* Sophia-H, Hutchinson (Algorithm 1): ``h_hat = u * (H u)`` with ``u ~ N(0, I)``; needs the loss ``obj_fn``.
* Sophia-G, Gauss-Newton-Bartlett (Algorithm 2): labels ``y_hat ~ softmax(logits)`` sampled from the model
  itself, ``g_hat = grad (1/B) sum_b CE(logits_b, y_hat_b)`` and ``h_hat = B * g_hat * g_hat``; needs
  ``logits_fn``. Its expectation is the diagonal of the Gauss-Newton matrix of the mean cross-entropy.

The estimators are ``GradientTransformationExtraArgs`` whose ``update`` returns the estimate, the same
interface as ``optax.contrib.sophia``'s ``hessian_diagonal_fn``; they are built on the shared primitives
(:mod:`optim.primitives.curvature`); the Hutchinson probes are drawn leaf by leaf, in each leaf's shape
and dtype, so the refresh step costs one Hessian-vector product and the probes, as ``optax.contrib.sophia``'s.

The clip is the paper's ``clip(m / max(gamma h, eps), 1)``. The authors' PyTorch ``SophiaG`` writes it
``sign(m) min(|m| / (rho bs h' + 1e-15), 1)`` with ``h'`` the EMA of ``g_hat^2``: the same map with
``gamma = rho``, the batch factor ``bs = B`` moved from the estimate into the denominator, and ``1e-15`` added
rather than used as a floor (they differ only where ``gamma h`` is below ~1e-5 and the coordinate unclipped).

Why not ``optax.contrib.sophia`` itself: its clip is the same, but it differs from the paper and from the
authors' ``SophiaG`` in three ways that change the trajectory. It bias-corrects the momentum (as the authors'
Levanter does); it refreshes ``h`` at steps 1, k+1, ... *after* computing the step, so each estimate is first
used one step later; and its estimator draws Rademacher probes from a key split in its state (the paper and
Levanter use Gaussian probes). Here the paper's Algorithm 3 is implemented as written.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from optim import checks
from optim.primitives import curvature, estimators

PyTree = Any
ESTIMATE_SCHEDULES = ('paper', 'code')


# Estimators.

class EstimatorState(NamedTuple):
  """State of a curvature estimator: a fixed key and the number of estimates drawn so far."""

  key: jax.Array  # estimate i uses fold_in(key, i)
  count: jax.Array  # int32


def _init_estimator(seed: int) -> Callable[[PyTree], EstimatorState]:
  def init_fn(params: PyTree) -> EstimatorState:
    del params
    return EstimatorState(jax.random.key(seed), jnp.zeros([], jnp.int32))
  return init_fn


def _next(state: EstimatorState) -> tuple[jax.Array, EstimatorState]:
  return jax.random.fold_in(state.key, state.count), EstimatorState(state.key, state.count + 1)


def probes_like(params: PyTree, key: jax.Array, distribution: str = 'gaussian') -> PyTree:
  """A random probe shaped like ``params``, drawn leaf by leaf (leaf ``i`` from ``split(key, num_leaves)[i]``).

  Each leaf is drawn in its own shape and dtype: nothing is raveled into one vector and split back, which on a
  large tree costs more than the Hessian-vector product itself.

  Args:
    params: template pytree (shapes and dtypes).
    key: PRNG key.
    distribution: ``'gaussian'`` (``N(0, I)``, the paper's) or ``'rademacher'`` (uniform signs).

  Returns:
    A pytree like ``params`` with ``E[u u^T] = I``.
  """
  leaves, treedef = jax.tree.flatten(params)
  draw = jax.random.normal if distribution == 'gaussian' else jax.random.rademacher
  keys = jax.random.split(key, len(leaves))
  return jax.tree.unflatten(treedef, [draw(k, jnp.shape(x), jnp.result_type(x)) for k, x in zip(keys, leaves)])


def hutchinson_diagonal(obj_fn: Callable[[PyTree], jax.Array], params: PyTree, key: jax.Array,
                        num_probes: int = 1, distribution: str = 'gaussian') -> PyTree:
  """Hutchinson's estimate ``(1/n) sum_i u_i * (H u_i)`` of the Hessian diagonal of ``obj_fn`` at ``params``.

  Sophia's Algorithm 1 (one Gaussian probe). Probe ``i`` is ``probes_like(params, fold_in(key, i))``, drawn per
  leaf; each costs one Hessian-vector product (forward-over-reverse, as ``optax.contrib.sophia``). Several
  probes linearise the gradient once and loop over the probes, so memory stays that of one product.

  Args:
    obj_fn: scalar loss ``obj_fn(params)`` on the current batch.
    params: the point at which the Hessian is taken.
    key: PRNG key for the probes.
    num_probes: probes averaged (static).
    distribution: ``'gaussian'`` (the paper's) or ``'rademacher'`` (lower variance; exact on diagonal H).

  Returns:
    A pytree like ``params``, unbiased for ``diag(H)``.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from optim.optimizers.sophia import hutchinson_diagonal
    >>> loss = lambda p: jnp.sum(jnp.array([1.0, 2.0]) * p['w'] ** 2)
    >>> d = hutchinson_diagonal(loss, {'w': jnp.zeros(2)}, jax.random.key(0), distribution='rademacher')
    >>> d['w'].tolist()   # Rademacher probes are exact on a diagonal Hessian
    [2.0, 4.0]
  """
  probe = lambda i: probes_like(params, jax.random.fold_in(key, i), distribution)
  if num_probes == 1:
    u = probe(0)
    return jax.tree.map(jnp.multiply, u, curvature.hvp(obj_fn, params, u))
  matvec = curvature.hessian_matvec(obj_fn, params)

  def add_probe(i, total):
    u = probe(i)
    return jax.tree.map(lambda t, a, b: t + a * b, total, u, matvec(u))

  total = jax.lax.fori_loop(0, num_probes, add_probe, jax.tree.map(jnp.zeros_like, params))
  return jax.tree.map(lambda t: t / num_probes, total)


def clip_by_global_norm_torch(tree: PyTree, max_norm: float) -> PyTree:
  """``tree * min(1, max_norm / (||tree|| + 1e-6))``, ``||.||`` the L2 norm over all leaves: PyTorch's
  ``clip_grad_norm_`` (the ``1e-6`` included), which the authors' Sophia-G loop applies to ``g_hat``."""
  norm = optax.tree.norm(tree)
  scale = jnp.minimum(1.0, max_norm / (norm + 1e-6))
  return jax.tree.map(lambda g: (g * scale).astype(g.dtype), tree)


def gauss_newton_bartlett(logits_fn: Callable[[PyTree], jax.Array], params: PyTree,
                          key: jax.Array | None = None, *, labels: jax.Array | None = None,
                          clip_norm: float | None = None) -> PyTree:
  """Gauss-Newton-Bartlett estimate ``B * g_hat * g_hat`` of the Gauss-Newton diagonal (Sophia, Algorithm 2).

  With ``z_b`` the logits of the ``B`` label positions (all leading axes of ``logits_fn(params)``; tokens for a
  language model, as the authors' code with ``bs = batch * block``), labels ``y_hat_b ~ softmax(z_b)`` are
  sampled from the model and ``g_hat = J^T (softmax(z) - onehot(y_hat)) / B`` is the gradient of the mean
  cross-entropy on them, obtained by one vjp through the model. By Bartlett's second identity
  ``E[B g_hat g_hat^T] = (1/B) sum_b J_b^T (diag p_b - p_b p_b^T) J_b``, the Gauss-Newton matrix of the mean
  cross-entropy, so the estimate is unbiased for its diagonal and never negative.

  Args:
    logits_fn: ``params -> logits`` of shape ``(..., num_classes)`` on the current batch.
    params: the point at which the curvature is estimated.
    key: PRNG key for the labels (unused when ``labels`` is given).
    labels: integer labels of shape ``logits.shape[:-1]`` to use instead of sampling (tests, replay).
    clip_norm: if given, ``g_hat`` is scaled by ``min(1, clip_norm / (||g_hat|| + 1e-6))`` (global L2 norm over
      all parameters) before it is squared: the authors' training loop (``train_sophiag.py`` calls
      ``clip_grad_norm_(model.parameters(), grad_clip)`` between the backward pass on the sampled labels and
      ``update_hessian()``; ``grad_clip = 1.0`` in their GPT-2 configs). The paper's Algorithm 2 does not clip
      (``None``, the default). The estimate is then ``B * clip(g_hat) * clip(g_hat)``.

  Returns:
    A pytree like ``params``.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from optim.optimizers.sophia import gauss_newton_bartlett
    >>> x = jnp.eye(3)
    >>> h = gauss_newton_bartlett(lambda w: x @ w, jnp.zeros((3, 2)), jax.random.key(0))
    >>> h.shape, bool(jnp.all(h >= 0))
    ((3, 2), True)
  """
  logits, pullback = jax.vjp(logits_fn, params)
  dtype = jnp.promote_types(logits.dtype, jnp.float32)
  z = logits.astype(dtype)
  if labels is None:
    if key is None:
      raise ValueError('gauss_newton_bartlett needs a key to sample labels (or labels=...)')
    labels = jax.random.categorical(key, z, axis=-1)
  num_classes = logits.shape[-1]
  n = logits.size // num_classes
  residual = (jax.nn.softmax(z, axis=-1) - jax.nn.one_hot(labels, num_classes, dtype=dtype)) / n
  (g_hat,) = pullback(residual.astype(logits.dtype))
  if clip_norm is not None:
    g_hat = clip_by_global_norm_torch(g_hat, clip_norm)
  return jax.tree.map(lambda g: (n * jnp.square(g.astype(dtype))).astype(g.dtype), g_hat)


def hutchinson_estimator(num_probes: int = 1, distribution: str = 'gaussian', seed: int = 0
                         ) -> optax.GradientTransformationExtraArgs:
  """Sophia-H's estimator as a transform: ``update(grads, state, params, obj_fn=...)`` returns ``u * (H u)``.

  ``update`` also takes ``probes=`` (a tree like the parameters): the estimate is then ``u * (H u)`` for that
  probe ``u`` instead of drawn ones, to replay another implementation's random draws.

  Args:
    num_probes: probes per estimate (the paper uses 1).
    distribution: ``'gaussian'`` (paper) or ``'rademacher'``.
    seed: the key is ``fold_in(key(seed), i)`` for the ``i``-th estimate.

  Returns:
    A ``GradientTransformationExtraArgs`` whose updates are the estimate.
  """
  with checks.owner('hutchinson_estimator'):
    checks.positive_int('num_probes', num_probes)
    checks.one_of('distribution', distribution, tuple(estimators.DISTRIBUTIONS))
  num_probes = int(num_probes)

  def update_fn(updates, state, params=None, obj_fn=None, probes=None, **unused):
    del updates, unused
    if params is None or obj_fn is None:
      raise ValueError('the Hutchinson estimator needs params and obj_fn=(params -> scalar loss)')
    key, state = _next(state)
    if probes is not None:  # replay: the probe given, u * (H u)
      return jax.tree.map(jnp.multiply, probes, curvature.hvp(obj_fn, params, probes)), state
    return hutchinson_diagonal(obj_fn, params, key, num_probes, distribution), state

  return optax.GradientTransformationExtraArgs(_init_estimator(seed), update_fn)


def gauss_newton_bartlett_estimator(seed: int = 0, clip_norm: float | None = None
                                    ) -> optax.GradientTransformationExtraArgs:
  """Sophia-G's estimator as a transform: ``update(grads, state, params, logits_fn=...)``.

  Without ``logits_fn`` but with ``obj_fn`` (a scalar loss has no output distribution to sample labels from),
  it falls back to one Gaussian Hutchinson probe on ``obj_fn``, i.e. Sophia-H's estimate, and warns once per
  trace. With neither it raises. ``update`` also takes ``labels=`` (integers shaped like the logits without
  their last axis): they are used instead of sampled ones, to replay another implementation's draws.

  Args:
    seed: the key is ``fold_in(key(seed), i)`` for the ``i``-th estimate.
    clip_norm: clip ``g_hat`` to this global norm before squaring (the authors' loop; see
      :func:`gauss_newton_bartlett`); ``None`` (default) as the paper. Not applied to the Hutchinson fallback.

  Returns:
    A ``GradientTransformationExtraArgs`` whose updates are the estimate.
  """
  if clip_norm is not None:
    with checks.owner('gauss_newton_bartlett_estimator'):
      checks.check('clip_norm', clip_norm, lambda v: v > 0, 'finite and > 0 (or None)')

  def update_fn(updates, state, params=None, logits_fn=None, obj_fn=None, labels=None, **unused):
    del updates, unused
    if params is None:
      raise ValueError('the Gauss-Newton-Bartlett estimator needs params')
    key, state = _next(state)
    if logits_fn is not None:
      return gauss_newton_bartlett(logits_fn, params, key, labels=labels, clip_norm=clip_norm), state
    if obj_fn is None:
      raise ValueError('sophia_g needs logits_fn=(params -> logits of the batch) to sample labels from the '
                       'model (or obj_fn=(params -> loss) for the Hutchinson fallback)')
    warnings.warn('sophia_g: no logits_fn given, estimating the Hessian diagonal with a Hutchinson probe on '
                  'obj_fn instead of the Gauss-Newton-Bartlett estimator', stacklevel=2)
    return hutchinson_diagonal(obj_fn, params, key), state

  return optax.GradientTransformationExtraArgs(_init_estimator(seed), update_fn)


# The optimizer.

class ScaleBySophiaState(NamedTuple):
  count: jax.Array  # int32, steps taken
  mu: optax.Updates  # m, EMA of gradients
  hessian: optax.Updates  # h, EMA of the curvature estimates
  estimator: Any  # the estimator's state


def scale_by_sophia(estimator: optax.GradientTransformation, b1: float = 0.965, b2: float = 0.99,
                    gamma: float = 0.01, eps: float = 1e-12, update_interval: int = 10,
                    mu_dtype: Any = None, estimate_schedule: str = 'paper') -> optax.GradientTransformationExtraArgs:
  """Sophia's direction: ``clip(m / max(gamma h, eps), -1, 1)`` with ``h`` refreshed every ``k`` steps.

  Algorithm 3 of arXiv 2305.14342, for ``t = 1, 2, ...``::

      m_t = b1 m_{t-1} + (1 - b1) g_t                       (no bias correction)
      if t mod k == 1:  h_t = b2 h_{t-k} + (1 - b2) h_hat_t,  h_hat_t = Estimator(theta_t)
      else:             h_t = h_{t-1}
      u_t = clip(m_t / max(gamma h_t, eps), -1, 1)

  The estimate is taken *before* the step that first uses it, at ``t = 1, k+1, 2k+1, ...``, inside a
  ``lax.cond`` so the other steps run no Hessian or Gauss-Newton product. A negative estimate (Hutchinson)
  gives ``max(gamma h, eps) = eps``: that coordinate takes the full clipped step ``sign(m)``.

  ``estimate_schedule='paper'`` (default) is that schedule, Algorithm 3's. ``'code'`` is the authors' training
  loop (``train_sophiag.py``): no estimate before step 1, so ``h = 0`` and steps 1..k are ``sign(m)`` steps,
  then one after every k-th step. Here that estimate is taken at the start of steps k+1, 2k+1, ...: the same
  point as theirs (the parameters after step k), on the batch of the step that uses it (theirs: the batch of
  step k; a transform sees only the current batch, but the oracles passed to ``update`` decide, so a replay can
  pass the previous batch).

  Args:
    estimator: curvature estimator transform; its ``update(grads, state, params, **oracles)`` returns the
      estimate (:func:`hutchinson_estimator`, :func:`gauss_newton_bartlett_estimator`, or your own). The
      ``update`` of this transform forwards its keyword arguments (``obj_fn``, ``logits_fn``) to it.
    b1: momentum decay.
    b2: decay of the curvature EMA (applied once per refresh).
    gamma: the paper's ``gamma`` (``rho`` in the authors' code).
    eps: floor of the denominator.
    update_interval: ``k``, steps between estimates.
    mu_dtype: dtype of ``m`` (default: that of the parameters).
    estimate_schedule: ``'paper'`` (estimates before steps 1, k+1, ...) or ``'code'`` (the authors' loop:
      after steps k, 2k, ...).

  Returns:
    A ``GradientTransformationExtraArgs``.
  """
  with checks.owner('scale_by_sophia') as name:
    checks.decay_rate('b1', b1)
    checks.decay_rate('b2', b2)
    checks.positive('gamma', gamma)
    checks.non_negative('eps', eps)
    checks.positive_int('update_interval', update_interval)
    checks.one_of('estimate_schedule', estimate_schedule, ESTIMATE_SCHEDULES)
  first = 0 if estimate_schedule == 'paper' else update_interval  # steps taken before the first estimate
  estimator = optax.with_extra_args_support(estimator)

  def init_fn(params):
    return ScaleBySophiaState(
        count=jnp.zeros([], jnp.int32),
        mu=optax.tree.zeros_like(params, dtype=mu_dtype),
        hessian=optax.tree.zeros_like(params),
        estimator=estimator.init(params))

  def update_fn(updates, state, params=None, **oracles):
    if params is None:
      raise ValueError(f'{name} needs params in update() for its curvature estimate')
    checks.same_structure(updates, state.mu, name)
    checks.same_structure(params, state.mu, f'{name} (params)')
    mu = optax.tree.update_moment(updates, state.mu, b1, 1)

    def refresh(hessian, estimator_state):
      estimate, estimator_state = estimator.update(updates, estimator_state, params, **oracles)
      estimate = jax.tree.map(lambda e, h: e.astype(h.dtype), estimate, hessian)
      return optax.tree.update_moment(estimate, hessian, b2, 1), estimator_state

    hessian, estimator_state = jax.lax.cond(
        (state.count % update_interval == 0) & (state.count >= first), refresh, lambda h, s: (h, s),
        state.hessian, state.estimator)

    def direction(m, h, g):
      dtype = jnp.promote_types(jnp.promote_types(m.dtype, h.dtype), jnp.float32)
      ratio = m.astype(dtype) / jnp.maximum(gamma * h.astype(dtype), eps)
      return jnp.clip(ratio, -1, 1).astype(g.dtype)

    updates = jax.tree.map(direction, mu, hessian, updates)
    mu = optax.tree.cast(mu, mu_dtype)
    return updates, ScaleBySophiaState(optax.safe_increment(state.count), mu, hessian, estimator_state)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _sophia(estimator, learning_rate, b1, b2, gamma, eps, weight_decay, weight_decay_mask, update_interval,
            mu_dtype, estimate_schedule):
  checks.non_negative('weight_decay', weight_decay)
  checks.learning_rate(learning_rate)
  return optax.chain(
      scale_by_sophia(estimator, b1, b2, gamma, eps, update_interval, mu_dtype, estimate_schedule),
      optax.add_decayed_weights(weight_decay, weight_decay_mask),
      optax.scale_by_learning_rate(learning_rate))


def sophia_h(learning_rate: optax.ScalarOrSchedule, b1: float = 0.965, b2: float = 0.99, gamma: float = 0.01,
             eps: float = 1e-12, weight_decay: float = 0.0, weight_decay_mask: Any = None,
             update_interval: int = 10, distribution: str = 'gaussian', seed: int = 0, mu_dtype: Any = None,
             estimate_schedule: str = 'paper') -> optax.GradientTransformationExtraArgs:
  """Sophia-H: Sophia with Hutchinson's Hessian-diagonal estimate (arXiv 2305.14342, Algorithms 1 and 3).

  ``theta <- theta - lr * (clip(m / max(gamma h, eps), -1, 1) + weight_decay * theta)`` with
  ``h <- b2 h + (1 - b2) u * (H u)``, ``u ~ N(0, I)``, every ``update_interval`` steps (see
  :func:`scale_by_sophia`). ``update`` needs ``obj_fn=`` (params -> scalar loss on the current batch); it also
  takes ``probes=`` (a tree like the parameters) to use that probe instead of a drawn one (replay).

  Conventions: the paper's Algorithm 3 (no bias correction; estimate at steps 1, k+1, ... before the step;
  one Gaussian probe; for more, ``scale_by_sophia(hutchinson_estimator(num_probes))``). Defaults follow the
  authors' Levanter ``sophia_h`` (b1 0.965, b2 0.99, gamma 0.01, k 10).
  pytorch-optimizer's ``SophiaH(lr, p, eps)`` is this with ``learning_rate = lr * p``, ``gamma = p``,
  ``eps = p * eps`` (checked to 1e-10 in the tests); optax.contrib.sophia differs (see the module docstring).

  Args:
    learning_rate: step size ``eta`` (or schedule).
    b1: momentum decay.
    b2: curvature EMA decay.
    gamma: scale of the curvature in the denominator.
    eps: floor of the denominator.
    weight_decay: decoupled weight decay (multiplied by the learning rate), as ``add_decayed_weights``.
    weight_decay_mask: mask for the weight decay.
    update_interval: steps ``k`` between Hessian estimates.
    distribution: ``'gaussian'`` or ``'rademacher'``.
    seed: seed of the probe keys.
    mu_dtype: dtype of the momentum.
    estimate_schedule: ``'paper'`` (before steps 1, k+1, ...) or ``'code'`` (after steps k, 2k, ...); see
      :func:`scale_by_sophia`.

  Returns:
    A ``GradientTransformationExtraArgs``.

  Example:
    >>> import jax, jax.numpy as jnp, optax
    >>> from optim import sophia_h
    >>> loss = lambda p: jnp.sum(jnp.array([1.0, 10.0]) * p ** 2)
    >>> params = jnp.array([1.0, 1.0])
    >>> tx = sophia_h(0.02, gamma=1.0)
    >>> step = jax.jit(lambda p, s: tx.update(jax.grad(loss)(p), s, p, obj_fn=loss))
    >>> state = tx.init(params)
    >>> for _ in range(200):
    ...   updates, state = step(params, state)
    ...   params = optax.apply_updates(params, updates)
    >>> bool(loss(params) < 0.1)
    True
  """
  with checks.owner('sophia_h'):
    return _sophia(hutchinson_estimator(1, distribution, seed), learning_rate, b1, b2, gamma, eps,
                   weight_decay, weight_decay_mask, update_interval, mu_dtype, estimate_schedule)


def sophia_g(learning_rate: optax.ScalarOrSchedule, b1: float = 0.965, b2: float = 0.99, gamma: float = 0.04,
             eps: float = 1e-12, weight_decay: float = 0.1, weight_decay_mask: Any = None,
             update_interval: int = 10, seed: int = 0, mu_dtype: Any = None,
             estimator_clip_norm: float | None = None, estimate_schedule: str = 'paper'
             ) -> optax.GradientTransformationExtraArgs:
  """Sophia-G: Sophia with the Gauss-Newton-Bartlett estimate (arXiv 2305.14342, Algorithms 2 and 3).

  ``theta <- theta - lr * (clip(m / max(gamma h, eps), -1, 1) + weight_decay * theta)`` with
  ``h <- b2 h + (1 - b2) B g_hat * g_hat`` every ``update_interval`` steps, ``g_hat`` the gradient of the mean
  cross-entropy on labels sampled from the model's softmax (:func:`gauss_newton_bartlett`). ``update`` needs
  ``logits_fn=`` (params -> logits of the current batch); given only ``obj_fn`` it falls back to a Hutchinson
  probe and warns. It also takes ``labels=`` to use those instead of sampled ones (replay).

  Conventions: the paper's Algorithm 3. The authors' ``SophiaG`` computes the same update with
  ``rho * bs * h`` in the denominator (``rho = gamma``, ``bs = B``) and ``+ 1e-15`` instead of the ``max``;
  in their training loop the first estimate comes after step ``k`` (``h = 0`` for steps 1..k, pure
  ``sign(m)`` steps) instead of before step 1 (``estimate_schedule='code'``), and their loop clips the
  estimator's gradient ``g_hat`` to global norm ``grad_clip = 1`` before squaring it (``estimator_clip_norm=1.0``
  here; off by default, as the paper). The tests reproduce their trajectory to 1e-10 through those arguments,
  from the same sampled labels. Defaults are those of the
  authors' ``SophiaG`` class (b1 0.965, b2 0.99, rho 0.04, wd 0.1) and training script (k = 10).

  Args:
    learning_rate: step size ``eta`` (or schedule); comparable to AdamW's per the authors' README.
    b1: momentum decay.
    b2: curvature EMA decay.
    gamma: the paper's ``gamma`` (``rho``).
    eps: floor of the denominator.
    weight_decay: decoupled weight decay (multiplied by the learning rate).
    weight_decay_mask: mask for the weight decay.
    update_interval: steps ``k`` between estimates.
    seed: seed of the label-sampling keys.
    mu_dtype: dtype of the momentum.
    estimator_clip_norm: ``None`` (the paper's Algorithm 2) or the global norm ``g_hat`` is clipped to before
      it is squared, PyTorch-style (the authors' training loop uses 1.0; see :func:`gauss_newton_bartlett`).
    estimate_schedule: ``'paper'`` (before steps 1, k+1, ...) or ``'code'`` (the authors' loop: after steps k,
      2k, ...); see :func:`scale_by_sophia`.

  Returns:
    A ``GradientTransformationExtraArgs``.

  Example:
    >>> import jax, jax.numpy as jnp, optax
    >>> from optim import sophia_g
    >>> x, y = jnp.eye(4), jnp.array([0, 1, 2, 0])
    >>> logits_fn = lambda w: x @ w
    >>> loss = lambda w: optax.softmax_cross_entropy_with_integer_labels(logits_fn(w), y).mean()
    >>> w = jnp.zeros((4, 3))
    >>> tx = sophia_g(0.1, weight_decay=0.0)
    >>> step = jax.jit(lambda w, s: tx.update(jax.grad(loss)(w), s, w, logits_fn=logits_fn))
    >>> state = tx.init(w)
    >>> for _ in range(50):
    ...   updates, state = step(w, state)
    ...   w = optax.apply_updates(w, updates)
    >>> bool(loss(w) < 0.5)
    True
  """
  with checks.owner('sophia_g'):
    return _sophia(gauss_newton_bartlett_estimator(seed, estimator_clip_norm), learning_rate, b1, b2, gamma, eps,
                   weight_decay, weight_decay_mask, update_interval, mu_dtype, estimate_schedule)


# Oracles for training loops and the registry (``optim.registry.ExtraArgsFn``).

def loss_oracle(loss_fn, params=None, key=None, logits_fn=None):
  del params, key, logits_fn
  return {'obj_fn': loss_fn}


def logits_oracle(loss_fn, params=None, key=None, logits_fn=None):
  del params, key
  return {'logits_fn': logits_fn} if logits_fn is not None else {'obj_fn': loss_fn}
