"""AdamP and SGDP: momentum optimizers that remove the radial component of the step on scale-invariant weights.

Heo, Chun, Oh, Han, Yun, Kim, Uh & Ha, "AdamP: Slowing Down the Slowdown for Momentum Optimizers on
Scale-invariant Weights", arXiv 2006.08217 (ICLR 2021). Matches the authors' code (github.com/clovaai/AdamP).

A weight counts as scale-invariant when its gradient is nearly orthogonal to it: for each view (first
*channel*, each output channel a row; then *layer*, the whole tensor one row), if
``max_row |cos(g_row, w_row)| < delta / sqrt(row_length)`` the update loses its component along each
``w_row`` and the weight decay is multiplied by ``wd_ratio``. Only tensors with ``ndim > 1`` are tested.

Layout: PyTorch keeps the output channel on axis 0 (``Linear`` ``(out, in)``, ``Conv2d`` ``(out, in, kh, kw)``);
flax keeps it last (``Dense`` ``(in, out)``, ``Conv`` ``(kh, kw, in, out)``). ``layout='flax'`` (default) takes
the channel view along the last axis, which is the official channel view on flax parameters; ``layout='torch'``
takes it along axis 0 and reproduces the official code on PyTorch-layout arrays.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from optim import checks

PyTree = Any


def project_radial(update: jax.Array, grad: jax.Array, param: jax.Array, delta: float, eps: float,
                   channel_axis: int = -1) -> tuple[jax.Array, jax.Array]:
  r"""AdamP's projection of one tensor: drops the radial part of ``update`` when ``param`` looks scale-invariant.

  For the channel view (rows = slices along ``channel_axis``), then the layer view (one row):
  ``cos_r = |<g_r, w_r>| / (max(||g_r||, eps) max(||w_r||, eps))`` (torch's ``cosine_similarity``); the first
  view with ``max_r cos_r < delta / sqrt(row length)`` projects
  ``update_r <- update_r - w_r <w_r, update_r> / (||w_r|| + eps)^2``.

  Args:
    update: the step direction, shape of ``param``.
    grad: the raw gradient (the test uses it, not the update).
    param: the weight.
    delta: the cosine threshold ``delta`` (0.1 in the paper).
    eps: in the norms, as in the official code.
    channel_axis: the output-channel axis (``-1`` for flax layouts, ``0`` for PyTorch layouts).

  Returns:
    ``(projected update, whether a projection happened)``; tensors with ``ndim <= 1`` pass unchanged.
  """
  if param.ndim <= 1:
    return update, jnp.zeros([], bool)
  dtype = jnp.promote_types(update.dtype, jnp.float32)
  u, g, w = (x.astype(dtype) for x in (update, grad, param))
  axis = channel_axis % w.ndim
  rows = tuple(i for i in range(w.ndim) if i != axis)
  # Four row sums in one pass; the layer view's sums are their totals.
  ww, gg, gw, wu = (jnp.sum(a * b, axis=rows, keepdims=True) for a, b in ((w, w), (g, g), (g, w), (w, u)))
  # The barrier keeps XLA from rewriting the layer totals sum(row sums) as fresh passes over the tensors.
  ww, gg, gw, wu = jax.lax.optimization_barrier((ww, gg, gw, wu))

  def cosine(gw, gg, ww):
    return jnp.abs(gw) / (jnp.maximum(jnp.sqrt(gg), eps) * jnp.maximum(jnp.sqrt(ww), eps))

  row_length = w.size // w.shape[axis]
  channel = jnp.max(cosine(gw, gg, ww)) < delta / row_length ** 0.5
  layer = ~channel & (cosine(jnp.sum(gw), jnp.sum(gg), jnp.sum(ww)) < delta / w.size ** 0.5)
  coef = jnp.where(channel, wu / (jnp.sqrt(ww) + eps) ** 2,
                   jnp.where(layer, jnp.sum(wu) / (jnp.sqrt(jnp.sum(ww)) + eps) ** 2, 0.0))
  return (u - w * coef).astype(update.dtype), channel | layer


_CHANNEL_AXIS = {'flax': -1, 'torch': 0}
EPS_PLACEMENTS = ('corrected', 'uncorrected')


def _project_tree(direction, grads, params, delta, eps, channel_axis):
  out = jax.tree.map(lambda u, g, p: project_radial(u, g, p, delta, eps, channel_axis), direction, grads, params)
  return jax.tree.transpose(jax.tree.structure(direction), None, out)


def _decayed(direction, params, fired, weight_decay, wd_ratio, scale=1.0):
  """``direction + weight_decay * ratio * scale * params``, ratio = wd_ratio where the projection fired."""
  def leaf(u, p, f):
    ratio = jnp.where(f, wd_ratio, 1.0)
    return (u + weight_decay * ratio * scale * p).astype(u.dtype)
  return jax.tree.map(leaf, direction, params, fired)


def _need_params(params, name):
  if params is None:
    raise ValueError(f'{name} needs the parameters: call update(grads, state, params)')


class ScaleByAdamPState(NamedTuple):
  """State of :func:`scale_by_adamp`: Adam's moments."""

  count: jax.Array
  mu: PyTree
  nu: PyTree


def scale_by_adamp(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, delta: float = 0.1,
                   wd_ratio: float = 0.1, weight_decay: float = 0.0, nesterov: bool = False,
                   layout: str = 'flax', mu_dtype: Any = None, eps_placement: str = 'corrected'
                   ) -> optax.GradientTransformation:
  r"""The AdamP direction (with its projection-dependent decoupled weight decay folded in).

  .. math::

    m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2 \\
    p_t &= \frac{m_t \text{ (or } \beta_1 m_t + (1-\beta_1) g_t \text{ if nesterov)}}
               {\sqrt{v_t}/\sqrt{1-\beta_2^t} + \epsilon}, \qquad
    q_t = \Pi_{w}(p_t) \text{ if } w \text{ is scale-invariant, else } p_t \\
    u_t &= q_t / (1-\beta_1^t) + \lambda\, r\, w, \qquad r = \text{wd\_ratio if projected, else } 1

  so that ``chain(scale_by_adamp(weight_decay=wd), scale_by_learning_rate(lr))`` gives the official
  ``w <- w (1 - lr wd r) - lr / (1-b1^t) q``. The decay is folded in here because ``r`` depends on the
  projection; with ``weight_decay=0`` (default) this is the bare direction.

  ``eps_placement='corrected'`` (default) adds ``eps`` to the bias-corrected root as above, as the authors' code
  does; ``'uncorrected'`` computes ``sqrt(1-b2^t) m / (sqrt(v) + eps)``, as pytorch-optimizer's ``AdamP`` (the
  same with ``eps`` scaled by ``sqrt(1-b2^t)``).

  Args:
    b1: decay of the first moment.
    b2: decay of the second moment.
    eps: added to the bias-corrected ``sqrt(v)``, and in the projection's norms.
    delta: the cosine threshold of the scale-invariance test.
    wd_ratio: weight decay multiplier on projected tensors.
    weight_decay: decoupled weight decay coefficient (scaled by the learning rate downstream).
    nesterov: Nesterov momentum.
    layout: ``'flax'`` (output channel last) or ``'torch'`` (output channel first), for the channel view.
    mu_dtype: dtype of the stored first moment.
    eps_placement: ``'corrected'`` (``sqrt(v_hat) + eps``, the authors') or ``'uncorrected'``
      (``sqrt(v) + eps``, pytorch-optimizer's).

  Returns:
    An ``optax.GradientTransformation`` that needs ``params`` in ``update``.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from optim import scale_by_adamp
    >>> w = jnp.array([[3.0], [4.0]])   # flax layout (in=2, out=1): one output channel
    >>> g = jnp.array([[4.0], [-3.0]])  # a gradient orthogonal to it, as scale invariance makes it
    >>> tx = scale_by_adamp()
    >>> u, _ = tx.update(g, tx.init(w), w)
    >>> round(float(jnp.vdot(u, w)), 6)  # Adam's first step, sign(g), had a radial part; it is gone
    0.0

  arXiv 2006.08217; official code github.com/clovaai/AdamP (``adamp.py``).
  """
  with checks.owner('scale_by_adamp'):
    checks.decay_rate('b1', b1)
    checks.decay_rate('b2', b2)
    for name, value in (('eps', eps), ('delta', delta), ('wd_ratio', wd_ratio), ('weight_decay', weight_decay)):
      checks.non_negative(name, value)
    checks.one_of('layout', layout, tuple(_CHANNEL_AXIS))
    checks.one_of('eps_placement', eps_placement, EPS_PLACEMENTS)
  channel_axis = _CHANNEL_AXIS[layout]

  def init_fn(params):
    return ScaleByAdamPState(jnp.zeros([], jnp.int32), optax.tree.zeros_like(params, dtype=mu_dtype),
                             optax.tree.zeros_like(params))

  def update_fn(updates, state, params=None):
    _need_params(params, 'scale_by_adamp')
    checks.same_structure(updates, state.nu, 'scale_by_adamp')
    checks.same_structure(params, state.nu, 'scale_by_adamp (params)')
    count = optax.safe_increment(state.count)
    bc1, bc2 = 1 - b1 ** count, 1 - b2 ** count

    def moments(g, m, v):
      m_new = b1 * m + (1 - b1) * g
      v_new = b2 * v + (1 - b2) * g * g
      num = b1 * m_new + (1 - b1) * g if nesterov else m_new
      if eps_placement == 'corrected':
        p = num / (jnp.sqrt(v_new) / jnp.sqrt(bc2) + eps)
      else:
        p = jnp.sqrt(bc2) * num / (jnp.sqrt(v_new) + eps)
      return p, m_new.astype(m.dtype), v_new.astype(v.dtype)

    out = jax.tree.map(moments, updates, state.mu, state.nu)
    direction, mu, nu = jax.tree.transpose(jax.tree.structure(updates), None, out)
    direction, fired = _project_tree(direction, updates, params, delta, eps, channel_axis)
    direction = jax.tree.map(lambda q: q / bc1, direction)
    direction = _decayed(direction, params, fired, weight_decay, wd_ratio)
    direction = jax.tree.map(lambda u, g: u.astype(g.dtype), direction, updates)
    return direction, ScaleByAdamPState(count, mu, nu)

  return optax.GradientTransformation(init_fn, update_fn)


def adamp(learning_rate: optax.ScalarOrSchedule = 1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          weight_decay: float = 0.0, delta: float = 0.1, wd_ratio: float = 0.1, nesterov: bool = False,
          layout: str = 'flax', mu_dtype: Any = None, eps_placement: str = 'corrected'
          ) -> optax.GradientTransformation:
  """AdamP with the official defaults: ``chain(scale_by_adamp(...), scale_by_learning_rate(learning_rate))``.

  Weight decay is decoupled, ``w <- w (1 - lr wd r)``, with ``r = wd_ratio`` on tensors that were projected;
  it lives in :func:`scale_by_adamp` because ``r`` depends on the projection.

  Args:
    learning_rate: a float or an optax schedule.
    b1: decay of the first moment.
    b2: decay of the second moment.
    eps: added to the bias-corrected ``sqrt(v)``.
    weight_decay: decoupled weight decay.
    delta: cosine threshold of the scale-invariance test.
    wd_ratio: weight decay multiplier on projected tensors.
    nesterov: Nesterov momentum.
    layout: ``'flax'`` (output channel last) or ``'torch'`` (output channel first), for the channel view.
    mu_dtype: dtype of the stored first moment.
    eps_placement: ``'corrected'`` (default: ``eps`` on the bias-corrected root, as the authors' code) or
      ``'uncorrected'`` (on ``sqrt(v)``, as pytorch-optimizer's ``AdamP``); see :func:`scale_by_adamp`.

  Returns:
    An ``optax.GradientTransformation``.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from optim import adamp
    >>> params = {'kernel': jnp.ones((3, 2)), 'bias': jnp.zeros(2)}
    >>> tx = adamp(learning_rate=1e-2, weight_decay=1e-2)
    >>> updates, _ = tx.update(jax.tree.map(jnp.ones_like, params), tx.init(params), params)
    >>> updates['kernel'].shape
    (3, 2)

  arXiv 2006.08217.
  """
  with checks.owner('adamp'):
    checks.learning_rate(learning_rate)
    return optax.chain(
        scale_by_adamp(b1=b1, b2=b2, eps=eps, delta=delta, wd_ratio=wd_ratio, weight_decay=weight_decay,
                       nesterov=nesterov, layout=layout, mu_dtype=mu_dtype, eps_placement=eps_placement),
        optax.scale_by_learning_rate(learning_rate))


class ScaleBySGDPState(NamedTuple):
  """State of :func:`scale_by_sgdp`: the momentum buffer."""

  momentum: PyTree


def scale_by_sgdp(momentum: float = 0.0, dampening: float = 0.0, nesterov: bool = False, eps: float = 1e-8,
                  delta: float = 0.1, wd_ratio: float = 0.1, weight_decay: float = 0.0, buffer: str = 'official',
                  layout: str = 'flax', mu_dtype: Any = None) -> optax.GradientTransformation:
  r"""The SGDP direction (with its projection-dependent decoupled weight decay folded in).

  .. math::

    b_t &= \mu b_{t-1} + (1 - \text{dampening}) g_t \qquad (b_0 = 0) \\
    d_t &= g_t + \mu b_t \text{ (nesterov)} \text{ or } b_t, \qquad q_t = \Pi_w(d_t) \text{ if scale-invariant} \\
    u_t &= q_t + \lambda\, r\, w / (1 - \mu)

  ``buffer`` says what is stored: ``'official'`` follows clovaai's ``sgdp.py``, where without Nesterov the
  in-place projection also projects the stored buffer (``b_t <- q_t``); ``'paper'`` keeps ``b_t`` unprojected
  (Algorithm 1 of the paper, and pytorch-optimizer's ``SGDP``). With Nesterov the two agree.

  Args:
    momentum: ``mu``.
    dampening: multiplies the incoming gradient by ``1 - dampening`` (also at the first step).
    nesterov: Nesterov momentum.
    eps: in the projection's norms.
    delta: cosine threshold of the scale-invariance test.
    wd_ratio: weight decay multiplier on projected tensors.
    weight_decay: decoupled weight decay (divided by ``1 - momentum``, as in the official code).
    buffer: ``'official'`` or ``'paper'``, see above.
    layout: ``'flax'`` (output channel last) or ``'torch'`` (output channel first), for the channel view.
    mu_dtype: dtype of the stored momentum buffer.

  Returns:
    An ``optax.GradientTransformation`` that needs ``params`` in ``update``.

  Example:
    >>> import jax.numpy as jnp
    >>> from optim import scale_by_sgdp
    >>> w = jnp.array([[3.0], [4.0]])
    >>> tx = scale_by_sgdp(momentum=0.9)
    >>> u, _ = tx.update(jnp.array([[4.0], [-3.0]]), tx.init(w), w)
    >>> round(float(jnp.vdot(u, w)), 6)
    0.0

  arXiv 2006.08217; official code github.com/clovaai/AdamP (``sgdp.py``).
  """
  with checks.owner('scale_by_sgdp'):
    checks.decay_rate('momentum', momentum)
    checks.check('dampening', dampening, lambda v: 0 <= v <= 1, 'in [0, 1]')
    for name, value in (('eps', eps), ('delta', delta), ('wd_ratio', wd_ratio), ('weight_decay', weight_decay)):
      checks.non_negative(name, value)
    checks.one_of('buffer', buffer, ('official', 'paper'))
    checks.one_of('layout', layout, tuple(_CHANNEL_AXIS))
  channel_axis = _CHANNEL_AXIS[layout]
  project_buffer = buffer == 'official' and not nesterov

  def init_fn(params):
    return ScaleBySGDPState(optax.tree.zeros_like(params, dtype=mu_dtype))

  def update_fn(updates, state, params=None):
    _need_params(params, 'scale_by_sgdp')
    checks.same_structure(updates, state.momentum, 'scale_by_sgdp')
    checks.same_structure(params, state.momentum, 'scale_by_sgdp (params)')
    buf = jax.tree.map(lambda b, g: momentum * b + (1 - dampening) * g, state.momentum, updates)
    direction = jax.tree.map(lambda g, b: g + momentum * b, updates, buf) if nesterov else buf
    direction, fired = _project_tree(direction, updates, params, delta, eps, channel_axis)
    stored = direction if project_buffer else buf
    stored = jax.tree.map(lambda b, old: b.astype(old.dtype), stored, state.momentum)
    direction = _decayed(direction, params, fired, weight_decay, wd_ratio, 1 / (1 - momentum))
    direction = jax.tree.map(lambda u, g: u.astype(g.dtype), direction, updates)
    return direction, ScaleBySGDPState(stored)

  return optax.GradientTransformation(init_fn, update_fn)


def sgdp(learning_rate: optax.ScalarOrSchedule, momentum: float = 0.0, dampening: float = 0.0,
         weight_decay: float = 0.0, nesterov: bool = False, eps: float = 1e-8, delta: float = 0.1,
         wd_ratio: float = 0.1, buffer: str = 'official', layout: str = 'flax', mu_dtype: Any = None
         ) -> optax.GradientTransformation:
  """SGDP with the official defaults: ``chain(scale_by_sgdp(...), scale_by_learning_rate(learning_rate))``.

  Weight decay is decoupled, ``w <- w (1 - lr wd r / (1 - momentum))`` with ``r = wd_ratio`` on projected
  tensors; the stored momentum follows the official code unless ``buffer='paper'`` (see :func:`scale_by_sgdp`).

  Args:
    learning_rate: a float or an optax schedule (required, as in the official code).
    momentum: momentum coefficient.
    dampening: gradient dampening.
    weight_decay: decoupled weight decay.
    nesterov: Nesterov momentum.
    eps: in the projection's norms.
    delta: cosine threshold of the scale-invariance test.
    wd_ratio: weight decay multiplier on projected tensors.
    buffer: ``'official'`` (projected buffer without Nesterov) or ``'paper'`` (unprojected).
    layout: ``'flax'`` (output channel last) or ``'torch'`` (output channel first), for the channel view.
    mu_dtype: dtype of the stored momentum buffer.

  Returns:
    An ``optax.GradientTransformation``.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from optim import sgdp
    >>> params = {'kernel': jnp.ones((3, 2)), 'bias': jnp.zeros(2)}
    >>> tx = sgdp(learning_rate=0.1, momentum=0.9)
    >>> updates, _ = tx.update(jax.tree.map(jnp.ones_like, params), tx.init(params), params)
    >>> updates['bias'].tolist()
    [-0.1, -0.1]

  arXiv 2006.08217.
  """
  with checks.owner('sgdp'):
    checks.learning_rate(learning_rate)
    return optax.chain(
        scale_by_sgdp(momentum=momentum, dampening=dampening, nesterov=nesterov, eps=eps, delta=delta,
                      wd_ratio=wd_ratio, weight_decay=weight_decay, buffer=buffer, layout=layout,
                      mu_dtype=mu_dtype),
        optax.scale_by_learning_rate(learning_rate))
