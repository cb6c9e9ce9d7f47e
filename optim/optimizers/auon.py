"""AuON and Hybrid-AuON: Nesterov momentum rescaled by the RMS of its hyperbolic cosine (no orthogonalisation).

Maity, "AuON: A Linear-time Alternative to Semi-Orthogonal Momentum Updates", arXiv 2509.24320; authors' code
at github.com/ryyzn9/AuON. Two versions of the rule exist and both are implemented (``convention``):

* ``'paper'`` (default): the paper (v1, Sec. 3.1-3.2) and the code it was run with (commit c87b862,
  ``Auon_Adam_train.py``). The momentum is normalised to unit Frobenius norm *before* the cosh-RMS rescaling,
  so the step has norm about one ("unit-norm momentum updates"), times Muon's shape factor
  ``sqrt(max(1, fan_out / fan_in))``; no gamma (1.0); Hybrid-AuON runs a *single* Newton-Schulz iteration.
* ``'code'``: the repository at HEAD (bba2e82, ``auon/optimizer.py``). The cosh-RMS is taken of
  ``gamma * G / ||G||`` with ``gamma = 1.5`` but divides the *unnormalised* ``G``, so the step has the
  gradient's scale (learning rates ~0.1-0.2); no shape factor; Hybrid runs five Newton-Schulz iterations.

Both use Muon's quintic Newton-Schulz coefficients through :func:`optim.orthogonalize`, whose
normalisation (``||X||_F + 1e-7``) and transposition match the authors'.

Layout: a matrix is read as ``(fan_in, fan_out)``, flax's ``Dense`` kernel (``layout='flax'``, default; conv
kernels ``(h, w, in, out)`` as ``(h*w*in, out)``), or as PyTorch's ``(out, in)`` (``layout='torch'``; conv
``(out, in, h, w)`` as ``(out, in*h*w)``, the authors' view). Only the paper's shape factor
``sqrt(max(1, fan_out / fan_in))`` depends on it: the cosh-RMS and the norms are invariant under transposition,
and Newton-Schulz is transpose-equivariant.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from optim import checks
from optim.primitives import newton_schulz

CONVENTIONS = {'paper': {'gamma': 1.0, 'ns_steps': 1}, 'code': {'gamma': 1.5, 'ns_steps': 5}}
LAYOUTS = ('flax', 'torch')
_NORM_EPS, _RMS_EPS = 1e-7, 1e-8  # the authors' constants, in both versions


class ScaleByAuonState(NamedTuple):
  """The momentum buffer ``m`` (one array per parameter)."""
  mu: Any


def cosh_rms(x: jax.Array) -> jax.Array:
  """``sqrt(mean(cosh(x)^2))``: the tail-sensitive scale AuON divides by (>= 1, grows with spiky entries)."""
  return jnp.sqrt(jnp.mean(jnp.square(jnp.cosh(x))))


def _direction(d: jax.Array, gamma, ns_steps: int, convention: str, layout: str) -> jax.Array:
  """AuON's update for one leaf from its Nesterov momentum ``d``."""
  shape, dtype = d.shape, d.dtype
  matrix = d.ndim >= 2
  d = d.astype(jnp.promote_types(dtype, jnp.float32))
  if matrix:
    # As (fan_in, fan_out): flax conv kernels as (h*w*in, out), PyTorch's (out, in, h, w) as (in*h*w, out).
    d = d.reshape(-1, shape[-1]) if layout == 'flax' else d.reshape(shape[0], -1).T
  hybrid = matrix and ns_steps > 0
  if hybrid:
    x = newton_schulz.orthogonalize(d, ns_steps, coeffs='quintic', eps=_NORM_EPS)
  if convention == 'paper':
    if not hybrid:
      x = d / (jnp.linalg.norm(d) + _NORM_EPS)
    u = x / (cosh_rms(gamma * x) + _RMS_EPS)
    if matrix:
      u = u * jnp.sqrt(jnp.maximum(1.0, d.shape[1] / d.shape[0]))
  else:
    x = x if hybrid else d
    norm = jnp.linalg.norm(x)
    u = x / (cosh_rms(gamma * x / (norm + _NORM_EPS)) + _RMS_EPS)
    u = jnp.where(norm == 0, 0.0, u)  # the authors skip the step on a zero update
  if matrix and layout == 'torch':
    u = u.T
  return u.reshape(shape).astype(dtype)


def scale_by_auon(momentum: float = 0.95, ns_steps: int = 0, convention: str = 'paper',
                  gamma: float | None = None, mu_dtype: Any = None, layout: str = 'flax'
                  ) -> optax.GradientTransformation:
  r"""AuON's direction: Nesterov momentum, normalised, divided by the RMS of its hyperbolic cosine.

  With :math:`m \leftarrow \mu m + (1-\mu) g` and the Nesterov mix :math:`G = \mu m + (1-\mu) g` (always on,
  as in the authors' code), convention ``'paper'`` returns

  .. math::
     X = \frac{G}{\|G\|_F + 10^{-7}}, \qquad
     U = \sqrt{\max(1, \tfrac{n_{out}}{n_{in}})}\;
         \frac{X}{\sqrt{\tfrac1N \sum_i \cosh^2(\gamma X_i)} + 10^{-8}},

  and ``'code'`` returns :math:`G / (\sqrt{\tfrac1N\sum_i\cosh^2(\gamma G_i/(\|G\|_F+10^{-7}))} + 10^{-8})`.
  With ``ns_steps > 0`` (Hybrid-AuON) matrices first go through that many quintic Newton-Schulz iterations
  (:func:`optim.orthogonalize`), whose output replaces :math:`X` (paper) or :math:`G` (code).

  Everything but the optional Newton-Schulz steps is elementwise or a reduction: plain AuON is linear time in
  the number of parameters, with no matrix product. Conv kernels are viewed as ``(h*w*in, out)`` matrices;
  vectors and scalars get the same rule as one block (no Newton-Schulz, no shape factor), which is what the
  authors' optimizer class does with any tensor it is given (their README trains those with Adam instead:
  use ``optax.partition`` for that).

  Args:
    momentum: :math:`\mu`.
    ns_steps: Newton-Schulz iterations before the cosh-RMS (0: plain AuON).
    convention: ``'paper'`` (v1 paper and its code, default) or ``'code'`` (authors' repository at HEAD).
    gamma: temperature inside the cosh; ``None`` is the convention's (1.0 paper, 1.5 code).
    mu_dtype: dtype of the momentum buffer (default: the parameters').
    layout: ``'flax'`` (matrices ``(in, out)``, default) or ``'torch'`` (``(out, in)``): which axis is
      :math:`n_{out}` in the paper's shape factor (see the module docstring).

  Returns:
    An ``optax.GradientTransformation`` with state :class:`ScaleByAuonState`.

  Example:
    >>> import jax.numpy as jnp
    >>> from optim import scale_by_auon
    >>> tx = scale_by_auon()
    >>> g = {'w': jnp.array([[3.0, 0.0], [0.0, 4.0]])}
    >>> u, _ = tx.update(g, tx.init(g))
    >>> [f'{v:.3f}' for v in u['w'].ravel().tolist()]  # (0.6, 0.8) divided by cosh-RMS 1.14
    ['0.527', '0.000', '0.000', '0.702']
  """
  with checks.owner('scale_by_auon') as name:
    checks.one_of('convention', convention, tuple(CONVENTIONS))
    checks.one_of('layout', layout, LAYOUTS)
    checks.check('momentum', momentum, lambda v: 0 <= v <= 1, 'in [0, 1]')
    checks.check('ns_steps', ns_steps, lambda v: v >= 0 and v == int(v), 'a non-negative integer')
    gamma = CONVENTIONS[convention]['gamma'] if gamma is None else gamma
    checks.positive('gamma', gamma)

  def init_fn(params):
    return ScaleByAuonState(mu=optax.tree.zeros_like(params, dtype=mu_dtype))

  def update_fn(updates, state, params=None):
    del params
    checks.same_structure(updates, state.mu, name)
    mu = jax.tree.map(lambda g, m: momentum * m + (1 - momentum) * g, updates, state.mu)
    nesterov = jax.tree.map(lambda g, m: momentum * m + (1 - momentum) * g, updates, mu)
    direction = functools.partial(_direction, gamma=gamma, ns_steps=ns_steps, convention=convention, layout=layout)
    out = jax.tree.map(lambda d, g: direction(d).astype(g.dtype), nesterov, updates)
    # The buffer keeps its dtype (a traced float32 momentum would otherwise promote a bf16 buffer).
    mu = jax.tree.map(lambda new, old: new.astype(old.dtype), mu, state.mu)
    return out, ScaleByAuonState(mu=mu)

  return optax.GradientTransformation(init_fn, update_fn)


def scale_by_hybrid_auon(momentum: float = 0.95, ns_steps: int | None = None, convention: str = 'paper',
                         gamma: float | None = None, mu_dtype: Any = None, layout: str = 'flax'
                         ) -> optax.GradientTransformation:
  """Hybrid-AuON's direction: :func:`scale_by_auon` with Newton-Schulz steps on matrices.

  ``ns_steps=None`` takes the convention's count: 1 for ``'paper'`` ("a single Newton-Schulz iteration"),
  5 for ``'code'`` (``HybridAuON(ns_steps=5)`` and the authors' trainer).

  Args:
    momentum: momentum :math:`\\mu`.
    ns_steps: Newton-Schulz iterations (``None``: the convention's).
    convention: ``'paper'`` or ``'code'``; see :func:`scale_by_auon`.
    gamma: cosh temperature (``None``: the convention's).
    mu_dtype: dtype of the momentum buffer.
    layout: ``'flax'`` (``(in, out)``, default) or ``'torch'`` (``(out, in)``); see :func:`scale_by_auon`.

  Returns:
    An ``optax.GradientTransformation``.
  """
  with checks.owner('scale_by_hybrid_auon'):
    checks.one_of('convention', convention, tuple(CONVENTIONS))
    ns_steps = CONVENTIONS[convention]['ns_steps'] if ns_steps is None else ns_steps
    checks.check('ns_steps', ns_steps, lambda v: v >= 1 and v == int(v), 'an integer >= 1 for Hybrid-AuON')
    return scale_by_auon(momentum, ns_steps, convention, gamma, mu_dtype, layout)


def _chain(direction, learning_rate, weight_decay):
  checks.learning_rate(learning_rate)
  checks.non_negative('weight_decay', weight_decay)
  decay = [] if isinstance(weight_decay, (int, float)) and weight_decay == 0 else [
      optax.add_decayed_weights(weight_decay)]
  return optax.chain(direction, *decay, optax.scale_by_learning_rate(learning_rate))


def auon(learning_rate: optax.ScalarOrSchedule, momentum: float = 0.95, weight_decay: float = 0.0,
         convention: str = 'paper', gamma: float | None = None, mu_dtype: Any = None, layout: str = 'flax'
         ) -> optax.GradientTransformation:
  r"""AuON (arXiv 2509.24320): :math:`\theta \leftarrow \theta(1 - \eta\lambda) - \eta\, U`.

  ``chain(scale_by_auon, add_decayed_weights, scale_by_learning_rate)``: decoupled weight decay scaled by
  the learning rate, applied before the step as in the authors' code. See :func:`scale_by_auon` for
  :math:`U` and the two conventions; the learning rate's scale depends on the convention (the paper's
  0.055 on a GPT; the repository's default 0.24, its GPT config 0.08).

  Args:
    learning_rate: step size or schedule.
    momentum: momentum :math:`\mu`.
    weight_decay: :math:`\lambda`.
    convention: ``'paper'`` (default) or ``'code'``.
    gamma: cosh temperature (``None``: the convention's).
    mu_dtype: dtype of the momentum buffer.
    layout: ``'flax'`` (``(in, out)`` matrices, default) or ``'torch'`` (``(out, in)``); see
      :func:`scale_by_auon`.

  Returns:
    An ``optax.GradientTransformation``.

  Example:
    >>> import jax, jax.numpy as jnp, optax
    >>> from optim import auon
    >>> params = {'w': jnp.ones((3, 2)), 'b': jnp.zeros(2)}
    >>> tx = auon(0.05)
    >>> grads = jax.grad(lambda p: jnp.sum((p['w'] @ jnp.ones(2) - 1.0) ** 2) + jnp.sum(p['b'] ** 2))(params)
    >>> u, _ = tx.update(grads, tx.init(params), params)
    >>> jax.tree.map(jnp.shape, optax.apply_updates(params, u))
    {'b': (2,), 'w': (3, 2)}
  """
  with checks.owner('auon'):
    return _chain(scale_by_auon(momentum, 0, convention, gamma, mu_dtype, layout), learning_rate, weight_decay)


def hybrid_auon(learning_rate: optax.ScalarOrSchedule, momentum: float = 0.95, weight_decay: float = 0.0,
                ns_steps: int | None = None, convention: str = 'paper', gamma: float | None = None,
                mu_dtype: Any = None, layout: str = 'flax') -> optax.GradientTransformation:
  r"""Hybrid-AuON: AuON after ``ns_steps`` quintic Newton-Schulz iterations on each matrix.

  ``chain(scale_by_hybrid_auon, add_decayed_weights, scale_by_learning_rate)``; see
  :func:`scale_by_hybrid_auon`.

  Args:
    learning_rate: step size or schedule.
    momentum: momentum :math:`\mu`.
    weight_decay: decoupled weight decay, multiplied by the learning rate.
    ns_steps: Newton-Schulz iterations (``None``: 1 for ``'paper'``, 5 for ``'code'``).
    convention: ``'paper'`` (default) or ``'code'``.
    gamma: cosh temperature (``None``: the convention's).
    mu_dtype: dtype of the momentum buffer.
    layout: ``'flax'`` (``(in, out)``, default) or ``'torch'`` (``(out, in)``); see :func:`scale_by_auon`.

  Returns:
    An ``optax.GradientTransformation``.

  Example:
    >>> import jax.numpy as jnp
    >>> from optim import hybrid_auon
    >>> tx = hybrid_auon(0.05)
    >>> params = {'w': jnp.ones((3, 2))}
    >>> u, _ = tx.update({'w': jnp.eye(3, 2)}, tx.init(params), params)
    >>> u['w'].shape
    (3, 2)
  """
  with checks.owner('hybrid_auon'):
    return _chain(scale_by_hybrid_auon(momentum, ns_steps, convention, gamma, mu_dtype, layout), learning_rate,
                  weight_decay)
