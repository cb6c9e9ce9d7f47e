"""diffGrad: Adam whose step is damped per coordinate when the gradient barely changed since the last step.

Dubey, Chakraborty, Roy, Mukherjee, Singh & Chaudhuri, "diffGrad: An Optimization Method for Convolutional
Neural Networks", arXiv 1909.11015. Implemented as the authors' ``diffGrad_v2.py`` (the README's recommended
version): the previous gradient is a copy kept in the state. The v1 code stored an alias of ``p.grad``, so with
in-place ``zero_grad`` its "previous" gradient was always zero and the friction coefficient a constant 1/2.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from optim import checks

PyTree = Any


class ScaleByDiffGradState(NamedTuple):
  """State of :func:`scale_by_diffgrad`."""

  count: jax.Array  # int32, steps taken
  mu: PyTree  # first moment, in mu_dtype
  nu: PyTree  # second moment
  prev_grad: PyTree  # the gradient of the previous step (zero before the first)


def scale_by_diffgrad(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                      mu_dtype: Any = None, eps_root: float = 0.0) -> optax.GradientTransformation:
  r"""The diffGrad direction: Adam's, scaled per coordinate by a friction coefficient in (1/2, 1).

  .. math::

    m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2 \\
    \xi_t &= \mathrm{sigmoid}(|g_{t-1} - g_t|) \qquad (g_0 = 0) \\
    u_t &= \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\, \frac{\xi_t \odot m_t}{\sqrt{v_t + \epsilon_{root}} + \epsilon}

  ``eps`` is added to the uncorrected ``sqrt(v)``, as in the authors' code; the paper's bias-corrected
  ``m_hat / (sqrt(v_hat) + eps)`` is the same with ``eps`` replaced by ``eps * sqrt(1 - b2^t)``. ``eps_root``
  (inside the square root) is 0 in the authors' code and 1e-15 in pytorch-optimizer's ``DiffGrad``
  (``eps_root=1e-15`` reproduces it, with its ``weight_decouple=False``).

  Args:
    b1: decay of the first moment, in [0, 1).
    b2: decay of the second moment, in [0, 1).
    eps: added to ``sqrt(v)``.
    mu_dtype: dtype of the stored first moment (``None``: the parameters' dtype).
    eps_root: added to ``v`` inside the square root (0: the authors'; 1e-15: pytorch-optimizer's).

  Returns:
    An ``optax.GradientTransformation``; updates keep the gradients' dtypes.

  Example:
    >>> import jax.numpy as jnp
    >>> from optim import scale_by_diffgrad
    >>> tx = scale_by_diffgrad()
    >>> u, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
    >>> [round(float(x), 3) for x in u]  # sigmoid(|0 - g|) times Adam's first step sign(g)
    [0.731, -0.881]

  arXiv 1909.11015; official code github.com/shivram1987/diffGrad (``diffGrad_v2.py``).
  """
  with checks.owner('scale_by_diffgrad'):
    checks.decay_rate('b1', b1)
    checks.decay_rate('b2', b2)
    checks.non_negative('eps', eps)
    checks.non_negative('eps_root', eps_root)

  def init_fn(params):
    return ScaleByDiffGradState(
        count=jnp.zeros([], jnp.int32),
        mu=optax.tree.zeros_like(params, dtype=mu_dtype),
        nu=optax.tree.zeros_like(params),
        prev_grad=optax.tree.zeros_like(params))

  def update_fn(updates, state, params=None):
    del params
    checks.same_structure(updates, state.nu, 'scale_by_diffgrad')
    count = optax.safe_increment(state.count)
    step = jnp.sqrt(1 - b2 ** count) / (1 - b1 ** count)

    def leaf(g, m, v, g_prev):
      m_new = b1 * m + (1 - b1) * g
      v_new = b2 * v + (1 - b2) * g * g
      friction = jax.nn.sigmoid(jnp.abs(g_prev - g))
      u = step * friction * m_new / (jnp.sqrt(v_new + eps_root) + eps)
      return u.astype(g.dtype), m_new.astype(m.dtype), v_new.astype(v.dtype), g.astype(g_prev.dtype)

    out = jax.tree.map(leaf, updates, state.mu, state.nu, state.prev_grad)
    u, mu, nu, prev = jax.tree.transpose(jax.tree.structure(updates), None, out)
    return u, ScaleByDiffGradState(count, mu, nu, prev)

  return optax.GradientTransformation(init_fn, update_fn)


def diffgrad(learning_rate: optax.ScalarOrSchedule = 1e-3, b1: float = 0.9, b2: float = 0.999,
             eps: float = 1e-8, weight_decay: float = 0.0, mu_dtype: Any = None, eps_root: float = 0.0
             ) -> optax.GradientTransformation:
  r"""diffGrad with the official code's coupled L2 weight decay.

  ``g <- g + weight_decay * theta`` enters the moments *and* the stored previous gradient (as in
  ``diffGrad_v2.py``), then ``theta <- theta - learning_rate * u`` with ``u`` from :func:`scale_by_diffgrad`.

  Args:
    learning_rate: a float or an optax schedule.
    b1: decay of the first moment.
    b2: decay of the second moment.
    eps: added to ``sqrt(v)``.
    weight_decay: coupled L2 coefficient (``0``: none).
    mu_dtype: dtype of the stored first moment.
    eps_root: added to ``v`` inside the square root: 0 (default) as the authors' code, 1e-15 as
      pytorch-optimizer's ``DiffGrad`` (see :func:`scale_by_diffgrad`).

  Returns:
    ``chain(add_decayed_weights(weight_decay), scale_by_diffgrad(...), scale_by_learning_rate(learning_rate))``.

  Example:
    >>> import jax, jax.numpy as jnp, optax
    >>> from optim import diffgrad
    >>> params = jnp.array([1.0, -1.0])
    >>> tx = diffgrad(learning_rate=0.1)
    >>> state = tx.init(params)
    >>> for _ in range(50):
    ...   updates, state = tx.update(jax.grad(lambda p: jnp.sum(p ** 2))(params), state, params)
    ...   params = optax.apply_updates(params, updates)
    >>> bool(jnp.all(jnp.abs(params) < 0.2))
    True

  arXiv 1909.11015.
  """
  with checks.owner('diffgrad'):
    checks.learning_rate(learning_rate)
    checks.non_negative('weight_decay', weight_decay)
    return optax.chain(
        optax.add_decayed_weights(weight_decay),
        scale_by_diffgrad(b1=b1, b2=b2, eps=eps, mu_dtype=mu_dtype, eps_root=eps_root),
        optax.scale_by_learning_rate(learning_rate))
