"""SGD-SaI: SGD with momentum whose learning rate is scaled per parameter block, once, at initialisation.

Xu, Jin, Zhang, Wang, Ren & Wang, "No More Adam: Learning Rate Scaling at Initialization is All You Need",
arXiv 2412.11768. The scale of each block (each leaf of the parameter tree, as each tensor in PyTorch) is the
gradient signal-to-noise ratio of the first gradient, ``||g||_2 / (std(g) + eps)``, computed once and kept; the
optimizer stores one moment (no second moment).

Conventions (the paper and the authors' code ``sgd_sai.py`` v1.0.3 disagree; the code is followed):

* ``std`` is PyTorch's unbiased one (``ddof=1``).
* The first momentum is the first gradient itself (``m_1 = g_1``), later ``m <- mu m + (1 - mu) g``.
* No division by the largest g-SNR (Algorithm 1, line 14 of the paper); ``normalize=True`` restores it.
* Degenerate blocks, whose first gradient has no spread (a single element, where the official code's
  ``nan_to_num`` turns the undefined std into 0, or all elements equal up to rounding, e.g. a zero-initialised
  bias with a symmetric gradient), get ``||g|| / eps`` from the official formula: a scale set by ``eps`` alone,
  ~1e8 times their neighbours'. Here they get ``degenerate_gsnr`` (default ``1.0``, a plain momentum step);
  ``degenerate_gsnr=None`` reproduces the official value.
* ``momentum=0`` (which crashes the official code) means ``m = g``.

pytorch-optimizer's ``SGDSaI`` differs in two ways, each one argument away: its momentum starts at zero
(``m_1 = (1 - mu) g_1``: ``momentum_start='zero'``), and tensors with fewer than two dimensions, or with a single
output, are scaled by ``||g||`` instead of the g-SNR, as are blocks whose std is exactly zero
(``vector_scale='norm'``).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from optim import checks

PyTree = Any
MOMENTUM_STARTS = ('gradient', 'zero')
VECTOR_SCALES = ('gsnr', 'norm')


class ScaleBySGDSaIState(NamedTuple):
  """State of :func:`scale_by_sgd_sai`: one moment and one scalar per block."""

  count: jax.Array  # int32
  gsnr: PyTree  # a scalar per leaf, set at the first update
  mu: PyTree  # the momentum


def gsnr(g: jax.Array, eps: float = 1e-8, degenerate: float | None = 1.0) -> jax.Array:
  """The gradient signal-to-noise ratio of one block, ``||g||_2 / (std(g, ddof=1) + eps)`` (float32 or wider).

  A block with one element, or whose std is zero up to rounding (at most ``8 * machine eps * rms(g)``), returns
  ``degenerate`` (``None``: the official ``||g|| / eps``).
  """
  g = g.astype(jnp.promote_types(g.dtype, jnp.float32))
  norm = jnp.sqrt(jnp.sum(g * g))
  std = jnp.std(g, ddof=1) if g.size > 1 else jnp.zeros([], g.dtype)
  official = norm / (std + eps)
  if degenerate is None:
    return official
  spread = std > 8 * jnp.finfo(g.dtype).eps * norm / g.size ** 0.5
  return jnp.where(spread, official, jnp.asarray(degenerate, g.dtype))


def scale_by_sgd_sai(momentum: float = 0.9, eps: float = 1e-8, normalize: bool = False,
                     degenerate_gsnr: float | None = 1.0, mu_dtype: Any = None, momentum_start: str = 'gradient',
                     vector_scale: str = 'gsnr') -> optax.GradientTransformation:
  r"""The SGD-SaI direction: a per-block constant times the momentum.

  .. math::

    s_b &= \frac{\|g_{1,b}\|_2}{\mathrm{std}(g_{1,b}) + \epsilon} \quad\text{(once, at the first step)} \\
    m_1 &= g_1 \text{ (or } (1-\mu) g_1 \text{)}, \qquad m_t = \mu m_{t-1} + (1-\mu) g_t \\
    u_{t,b} &= s_b\, m_{t,b}

  The g-SNR is computed inside the jitted update under ``lax.cond`` on the step count, so later steps skip
  the reductions.

  Args:
    momentum: ``mu`` in [0, 1).
    eps: added to the standard deviation.
    normalize: divide every ``s_b`` by ``max_b s_b`` (the paper's Algorithm 1; not in the official code).
    degenerate_gsnr: ``s_b`` of blocks with one element or ``std = 0``; ``None``: the official ``||g|| / eps``.
    mu_dtype: dtype of the stored momentum.
    momentum_start: ``'gradient'`` (``m_1 = g_1``, the authors' code) or ``'zero'`` (``m_0 = 0``, so
      ``m_1 = (1 - mu) g_1``, pytorch-optimizer's).
    vector_scale: ``'gsnr'`` (every block by its g-SNR, the authors') or ``'norm'`` (pytorch-optimizer's:
      ``s_b = ||g_1||`` for leaves with fewer than two dimensions or a single output, the last axis in flax's
      layout, and for blocks whose std is exactly zero; ``degenerate_gsnr`` is then unused).

  Returns:
    An ``optax.GradientTransformation``.

  Example:
    >>> import jax.numpy as jnp
    >>> from optim import scale_by_sgd_sai
    >>> tx = scale_by_sgd_sai(eps=0.0)
    >>> g = {'w': jnp.array([3.0, 4.0]), 'b': jnp.array([1.0, 1.0, 1.0, 1.0 + 1e-3])}
    >>> u, state = tx.update(g, tx.init(g))
    >>> float(state.gsnr['w'])  # ||(3, 4)|| / std((3, 4), ddof=1) = 5 / 0.7071...
    7.0710...
    >>> bool(state.gsnr['b'] > 1000)  # a nearly constant gradient is all signal: a large scale
    True

  arXiv 2412.11768; official code github.com/AnonymousAlethiometer/SGD_SaI (v1.0.3).
  """
  with checks.owner('scale_by_sgd_sai'):
    checks.decay_rate('momentum', momentum)
    checks.non_negative('eps', eps)
    if degenerate_gsnr is not None:
      checks.non_negative('degenerate_gsnr', degenerate_gsnr)
    checks.one_of('momentum_start', momentum_start, MOMENTUM_STARTS)
    checks.one_of('vector_scale', vector_scale, VECTOR_SCALES)

  def block_scale(g):
    if vector_scale == 'gsnr':
      return gsnr(g, eps, degenerate_gsnr)
    g = g.astype(jnp.promote_types(g.dtype, jnp.float32))
    norm = jnp.sqrt(jnp.sum(g * g))
    if g.ndim < 2 or g.shape[-1] == 1:
      return norm
    std = jnp.std(g, ddof=1)
    return jnp.where(std != 0, norm / (std + eps), norm)

  def init_fn(params):
    scalar = lambda p: jnp.zeros([], jnp.promote_types(p.dtype, jnp.float32))
    return ScaleBySGDSaIState(jnp.zeros([], jnp.int32), jax.tree.map(scalar, params),
                              optax.tree.zeros_like(params, dtype=mu_dtype))

  def first_gsnr(updates):
    s = jax.tree.map(block_scale, updates)
    if normalize:
      largest = jnp.max(jnp.stack([x.astype(jnp.float32) for x in jax.tree.leaves(s)]))
      s = jax.tree.map(lambda x: x / largest.astype(x.dtype), s)
    return s

  def update_fn(updates, state, params=None):
    del params
    checks.same_structure(updates, state.mu, 'scale_by_sgd_sai')
    first = state.count == 0
    s = jax.lax.cond(first, first_gsnr, lambda _: state.gsnr, updates)
    s = jax.tree.map(lambda new, old: new.astype(old.dtype), s, state.gsnr)

    def leaf(g, m, scale):
      m_new = momentum * m + (1 - momentum) * g
      if momentum_start == 'gradient':
        m_new = jnp.where(first, g, m_new)
      return (scale * m_new).astype(g.dtype), m_new.astype(m.dtype)

    out = jax.tree.map(leaf, updates, state.mu, s)
    u, mu = jax.tree.transpose(jax.tree.structure(updates), None, out)
    return u, ScaleBySGDSaIState(optax.safe_increment(state.count), s, mu)

  return optax.GradientTransformation(init_fn, update_fn)


def sgd_sai(learning_rate: optax.ScalarOrSchedule = 1e-2, momentum: float = 0.9, eps: float = 1e-8,
            weight_decay: float = 1e-2, normalize: bool = False, degenerate_gsnr: float | None = 1.0,
            mu_dtype: Any = None, momentum_start: str = 'gradient', vector_scale: str = 'gsnr'
            ) -> optax.GradientTransformation:
  r"""SGD-SaI with the official defaults and decoupled weight decay.

  ``theta <- theta (1 - lr wd) - lr s_b m`` as in ``sgd_sai.py``.

  Args:
    learning_rate: a float or an optax schedule.
    momentum: momentum coefficient.
    eps: added to the standard deviation in the g-SNR.
    weight_decay: decoupled weight decay (official default ``1e-2``).
    normalize: divide the g-SNRs by their maximum (the paper's Algorithm 1).
    degenerate_gsnr: scale of blocks with one element or ``std = 0`` (``None``: the official ``||g|| / eps``).
    mu_dtype: dtype of the stored momentum.
    momentum_start: ``'gradient'`` (authors') or ``'zero'`` (pytorch-optimizer's); see :func:`scale_by_sgd_sai`.
    vector_scale: ``'gsnr'`` (authors') or ``'norm'`` (pytorch-optimizer's); see :func:`scale_by_sgd_sai`.

  Returns:
    ``chain(scale_by_sgd_sai, add_decayed_weights(weight_decay), scale_by_learning_rate(learning_rate))``.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> from optim import sgd_sai
    >>> params = {'w': jnp.ones((4, 3)), 'b': jnp.zeros(3)}
    >>> tx = sgd_sai(learning_rate=1e-2)
    >>> state = tx.init(params)
    >>> jax.tree.map(jnp.shape, state[0].gsnr)  # one number per block, beside one moment
    {'b': (), 'w': ()}

  arXiv 2412.11768.
  """
  with checks.owner('sgd_sai'):
    checks.learning_rate(learning_rate)
    checks.non_negative('weight_decay', weight_decay)
    return optax.chain(
        scale_by_sgd_sai(momentum=momentum, eps=eps, normalize=normalize, degenerate_gsnr=degenerate_gsnr,
                         mu_dtype=mu_dtype, momentum_start=momentum_start, vector_scale=vector_scale),
        optax.add_decayed_weights(weight_decay),
        optax.scale_by_learning_rate(learning_rate))
