"""SSO: stochastic surrogate optimization in target space, m cheap steps per expensive loss gradient.

Lavington, Vaswani, Babanezhad, Schmidt & Le Roux, "Target-based Surrogates for Stochastic Optimization", ICML
2023, arXiv 2302.02607; the authors' code is WilderLavington/Target-Based-Surrogates-For-Stochastic-Optimization
(``optimizers/sgd_fmdopt.py::SGD_FMDOpt``).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from optim import checks

PyTree = Any


class SSOState(NamedTuple):
  count: jax.Array  # int32 outer steps, for a schedule of the target step


def _vdot(a: PyTree, b: PyTree) -> jax.Array:
  return sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def surrogate(model_fn: Callable[[PyTree], PyTree], targets: PyTree, output_grads: PyTree,
              learning_rate: float | jax.Array, proximal_weight: float = 0.5) -> Callable[[PyTree], jax.Array]:
  r"""The surrogate :math:`\eta\, g_t` minimised by the inner loop, up to a constant.

  .. math::

     h_t(\theta) = \eta \langle \nabla\ell(f_t), f(\theta) - f_t \rangle + c\, \|f(\theta) - f_t\|^2,

  with :math:`c = 1/2` the paper's :math:`g_t(\theta) = \ell(f_t) + \langle \nabla\ell(f_t), f(\theta) - f_t\rangle
  + \frac{1}{2\eta}\|f(\theta) - f_t\|^2` times :math:`\eta` (same minimiser; ``learning_rate = 0`` then means no
  move instead of a division by zero). ``targets`` and ``output_grads`` are held fixed (stop-gradient).
  """
  targets = jax.lax.stop_gradient(targets)
  output_grads = jax.lax.stop_gradient(output_grads)

  def h(theta):
    diff = jax.tree.map(lambda f, ft: (f - ft).astype(jnp.promote_types(f.dtype, jnp.float32)),
                        model_fn(theta), targets)
    return learning_rate * _vdot(output_grads, diff) + proximal_weight * _vdot(diff, diff)

  return h


def sso(learning_rate: optax.ScalarOrSchedule, inner_steps: int = 10, inner_learning_rate: float = 1.0,
        inner_optimizer: optax.GradientTransformation | None = None,
        proximal_weight: float = 0.5) -> optax.GradientTransformationExtraArgs:
  r"""SSO: one expensive gradient of the loss in target space, then ``inner_steps`` cheap steps on a surrogate.

  The loss is :math:`L(\theta) = \ell(f(\theta))`, with :math:`f` the model's outputs on the batch (the *target
  space*, e.g. logits) and :math:`\nabla \ell` the expensive part (an environment, a simulator). Outer step
  :math:`t`, on the batch :math:`S_t` that ``model_fn`` and ``output_loss_fn`` close over:

  1. targets :math:`f_t = f(\theta_t)` and the one expensive call :math:`G_t = \nabla \ell(f_t)`;
  2. starting from :math:`\omega_0 = \theta_t`, ``inner_steps`` steps of ``inner_optimizer`` on the surrogate
     (see :func:`surrogate`)
     :math:`h_t(\omega) = \eta \langle G_t, f(\omega) - f_t\rangle + c \|f(\omega) - f_t\|^2`,
     each costing one forward and backward pass of the model and no call of :math:`\nabla\ell`;
  3. :math:`\theta_{t+1} = \omega_m`; the returned update is :math:`\omega_m - \theta_t`.

  Solved exactly, step 2 is projected SGD in target space, :math:`f_{t+1} = \Pi_{\mathcal F}(f_t - \eta G_t)`; one
  inner SGD step of size :math:`\alpha` is SGD on :math:`\theta` with step :math:`\alpha\eta`
  (:math:`\nabla h_t(\theta_t) = \eta J^\top G_t = \eta \nabla L(\theta_t)`). With ``model_fn`` the identity the
  target space is the parameters and SSO is exactly SGD with step :math:`\eta` (with the defaults, after the
  first inner step; the others stay at the minimiser).

  Conventions: ``proximal_weight`` :math:`c = 1/2` is the paper's :math:`\frac{1}{2\eta}` (times :math:`\eta`);
  the authors' ``SGD_FMDOpt`` minimises ``mean(G f(w) / eta' + (f(w) - f_t)^2)`` with ``eta' = 1 / stepsize``,
  which is ``proximal_weight=1`` (a target step of half the stepsize) and a mean over the output entries (a
  rescaling of the inner step only). Its inner optimizer is a stochastic Armijo line search (``LSOpt``, step reset
  each outer step); here any optax transform, re-initialised each outer step: pass
  ``optax.chain(optax.sgd(1.0), optax.scale_by_backtracking_linesearch(...))`` for a line search (it receives
  ``value``, ``grad`` and ``value_fn``). The authors' default CE ``stepsize`` is ``1 / (1 - 1/K)`` (mean loss,
  their convention).

  Args:
    learning_rate: the target-space step :math:`\eta` (a scalar or a schedule of the outer step count).
    inner_steps: :math:`m`, surrogate steps per expensive gradient.
    inner_learning_rate: the step of the default inner optimizer, ``optax.sgd(inner_learning_rate)``.
    inner_optimizer: any optax transform minimising the surrogate; overrides ``inner_learning_rate``.
    proximal_weight: :math:`c` (``0.5`` the paper, ``1.0`` the authors' code).

  Returns:
    A ``GradientTransformationExtraArgs`` whose ``update(updates, state, params, *, model_fn, output_loss_fn=None,
    output_grads=None)`` takes the model on the batch, ``model_fn(params) -> outputs``, and either the loss of
    the outputs, ``output_loss_fn(outputs) -> scalar`` (differentiated once per update), or its gradient at
    ``model_fn(params)`` already computed, ``output_grads``. ``updates`` (the parameter gradient of a usual
    loop) is read for its structure only: SSO never needs it.

  Example:
    >>> import jax, jax.numpy as jnp, optax
    >>> import optim
    >>> x, y = jnp.array([[1., 0.], [1., 1.], [0., 2.]]), jnp.array([1., 2., 3.])
    >>> tx = optim.sso(learning_rate=1.0, inner_steps=300, inner_learning_rate=0.1)
    >>> w = jnp.zeros(2)
    >>> u, state = tx.update(w, tx.init(w), w, model_fn=lambda w: x @ w,
    ...                      output_loss_fn=lambda f: 0.5 * jnp.sum((f - y) ** 2))
    >>> [round(float(v), 3) for v in optax.apply_updates(w, u)]   # f_t - G = y, projected: least squares
    [0.778, 1.444]
  """
  with checks.owner('sso'):
    checks.non_negative('proximal_weight', proximal_weight)
    # A traced count (optax.inject_hyperparams) makes the inner loop a while_loop; a concrete one is checked here.
    checks.check('inner_steps', inner_steps, lambda v: v >= 1 and float(v).is_integer(), 'an integer >= 1')
    checks.learning_rate(learning_rate)
    if inner_optimizer is None:
      checks.learning_rate(inner_learning_rate, 'inner_learning_rate')
  inner = inner_optimizer if inner_optimizer is not None else optax.sgd(inner_learning_rate)
  takes_extra = isinstance(inner, optax.GradientTransformationExtraArgs)

  def init(params):
    return SSOState(count=jnp.zeros([], jnp.int32))

  def update(updates, state, params=None, *, model_fn=None, output_loss_fn=None, output_grads=None, **extra):
    del extra
    if params is None or model_fn is None:
      raise ValueError('sso: update needs params and the model on the batch, model_fn(params) -> outputs')
    checks.same_structure(updates, params, 'sso')
    eta = learning_rate(state.count) if callable(learning_rate) else learning_rate
    targets = model_fn(params)
    if output_grads is None:
      if output_loss_fn is None:
        raise ValueError('sso: pass output_loss_fn (the loss of the outputs) or output_grads (its gradient)')
      output_grads = jax.grad(output_loss_fn)(targets)
    checks.same_structure(output_grads, targets, 'sso: output_grads')
    h = surrogate(model_fn, targets, output_grads, eta, proximal_weight)
    value_and_grad = jax.value_and_grad(h)

    def body(_, carry):
      omega, inner_state = carry
      value, grad = value_and_grad(omega)
      grad = jax.tree.map(lambda g, w: g.astype(w.dtype), grad, omega)
      kwargs = dict(value=value, grad=grad, value_fn=h) if takes_extra else {}
      step, inner_state = inner.update(grad, inner_state, omega, **kwargs)
      return optax.apply_updates(omega, step), inner_state

    omega, _ = jax.lax.fori_loop(0, inner_steps, body, (params, inner.init(params)))
    new_updates = jax.tree.map(lambda w, p: (w - p).astype(p.dtype), omega, params)
    return new_updates, SSOState(count=optax.safe_increment(state.count))

  return optax.GradientTransformationExtraArgs(init, update)


def parameter_space_oracle(loss_fn, params=None, key=None, logits_fn=None):
  """Extra arguments for training loops that give only the loss of the parameters: the target space is then the
  parameters themselves (``model_fn`` the identity, ``output_loss_fn = loss_fn``), where SSO is SGD."""
  del params, key, logits_fn
  return {'model_fn': lambda p: p, 'output_loss_fn': loss_fn}
