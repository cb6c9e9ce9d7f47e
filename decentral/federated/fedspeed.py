"""FedSpeed: a prox-term whose bias a per-client correction cancels, and a merged perturbed gradient.

Sun, Shen, Huang, Ding, Tao, "FedSpeed: Larger Local Interval, Less Communication Round, and Higher
Generalization Accuracy", ICLR 2023, arXiv 2302.10429; official code woodenchild95/FL-Simulator. Round t, client
i, from the global x^t and its own prox-correction g_hat_i (zero at the start, kept across rounds), K local steps
of (the paper's Algorithm 1, in its notation as FLGo's ``fedspeed`` transcribes it; the PDF's own text could not be
re-read for this module)::

    g1 = grad f_i(x_k),   g2 = grad f_i(x_k + rho g1),   g_tilde = (1 - alpha) g1 + alpha g2     (quasi-gradient)
    x_{k+1} = x_k - eta (g_tilde - g_hat_i + (x_k - x^t) / lambda)                                   (prox-term)
    g_hat_i <- g_hat_i - (x_K - x^t) / lambda,     upload  x_hat_i = x_K - lambda g_hat_i            (prox-correction)
    x^{t+1} = mean over the round's clients of x_hat_i.

:func:`fedspeed_algorithm` is FedSpeed on the federated round engine (:class:`decentral.federated.Federated`): the
local optimizer (``Local.optimizer``, the paper's ``optax.sgd(eta)``) is fed the corrected quasi-gradient, g_hat_i
lives in the engine's per-client table, and the server optimizer ``optax.sgd(1.0)`` makes x^{t+1} the mean upload.
The pieces, each pure and jit-able: :func:`quasi_gradient` (g_tilde from a gradient oracle),
:func:`prox_correction` (the optax transform adding ``- g_hat_i + (x - x^t) / lambda``: chain any local optimizer
after it), :func:`finish_client` (the new g_hat_i and the upload), :func:`server_average` (the server step in
either convention) and :func:`local_steps` (K steps with ``lax.scan``, without the engine).

Conventions: the paper's, with the official code one argument away.

- Perturbation: the paper ascends by ``rho g1`` and merges with weight alpha (``normalize=False``); the code
  (``ESAM``) ascends by ``rho g1 / ||g1||`` (SAM's step) and uses only the perturbed gradient, i.e. ``alpha=1``,
  ``normalize=True``, rho 0.1.
- Scale of lambda and of the correction: the code's ``--lamb`` is 1 / lambda and its ``h_i`` is the raw sum of
  the client's past deltas, ``h_i = -lambda g_hat_i``; its local gradient ``lamb (w - w^t + h_i)`` is the paper's
  ``(x - x^t) / lambda - g_hat_i``: the same numbers (``tests/decentral/federated/test_fedspeed.py``).
- Server: the paper averages the uploads of the round's clients (``server='paper'``); the code adds to the mean of
  the round's x_K the mean of h over ALL N clients, never-sampled zeros included (``server='code'``); the two
  agree under full participation. The code also decays the local learning rate by 0.998 a round, clips the local
  gradient to norm 10 and adds weight decay 1e-3: chain ``optax.clip_by_global_norm`` / ``add_decayed_weights``
  after :func:`prox_correction` for those.

Switching the three parts off (``lam=None``: no prox-term and no correction; ``alpha=0``: no perturbation) leaves
FedAvg; ``lam`` set with ``correct=False`` is FedProx with mu = 1 / lambda (the components of the paper's ablation).

>>> import jax.numpy as jnp
>>> grad_fn = lambda x: x - 1.0                     # f(x) = (x - 1)^2 / 2
>>> float(quasi_gradient(grad_fn, jnp.array(3.0), alpha=0.5, rho=0.5))   # g1 = 2, g2 = grad(4) = 3
2.5
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from decentral.federated import rounds
from optim import checks as optim_checks

PyTree = Any
SERVERS = ('paper', 'code')


def _check(where, lam=None, alpha=0.0, rho=0.0):
  if lam is not None:
    optim_checks.check(f'{where}: lam', lam, lambda v: v > 0, 'positive (None for no prox-term)')
  optim_checks.check(f'{where}: alpha', alpha, lambda v: 0 <= v <= 1, 'in [0, 1]')
  optim_checks.non_negative(f'{where}: rho', rho)


def _norm(tree):
  return jnp.sqrt(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


def quasi_gradient(grad_fn: Callable[[PyTree], PyTree], params: PyTree, *, alpha: float, rho: float,
                   normalize: bool = False, eps: float = 1e-7) -> PyTree:
  """FedSpeed's merged gradient ``(1 - alpha) g1 + alpha grad_fn(params + rho g1)``, with ``g1 = grad_fn(params)``.

  ``normalize=True`` ascends by ``rho g1 / (||g1|| + eps)`` instead (SAM's step, the official code's ``ESAM``,
  which also takes ``alpha=1``). ``grad_fn`` sees the same batch at both points (close it over the batch). With
  ``alpha=0`` (a Python number) the second gradient is not computed.
  """
  _check('quasi_gradient', alpha=alpha, rho=rho)
  g1 = grad_fn(params)
  if optim_checks.is_concrete(alpha) and float(alpha) == 0.0:
    return g1
  scale = rho / (_norm(g1) + eps) if normalize else rho
  g2 = grad_fn(jax.tree.map(lambda x, g: x + (scale * g).astype(x.dtype), params, g1))
  return jax.tree.map(lambda a, b: (1 - alpha) * a + alpha * b, g1, g2)


class ProxCorrectionState(NamedTuple):
  """Nothing: the anchor x^t and the correction g_hat_i are per-round inputs of ``update``."""


def prox_correction(lam: float | None, *, correct: bool = True) -> optax.GradientTransformationExtraArgs:
  """The FedSpeed local direction: ``update(g, state, params, *, anchor, correction)`` returns
  ``g - correction + (params - anchor) / lam``.

  ``anchor`` is the round's global x^t, ``correction`` the client's g_hat_i. ``lam=None`` drops both terms (the
  direction is g); ``correct=False`` keeps the prox-term only (FedProx, mu = 1 / lam). Chain a local optimizer
  after it: the paper's is ``optax.sgd(eta)``.
  """
  _check('prox_correction', lam)

  def init_fn(params):
    del params
    return ProxCorrectionState()

  def update_fn(updates, state, params=None, *, anchor=None, correction=None, **extra):
    del extra
    if lam is None:
      return updates, state
    if params is None or anchor is None:
      raise ValueError('prox_correction: update needs params and anchor (the global parameters of the round)')
    out = jax.tree.map(lambda g, x, a: g + ((x - a) / lam).astype(g.dtype), updates, params, anchor)
    if correct:
      if correction is None:
        raise ValueError('prox_correction: update needs correction (the client\'s g_hat) when correct=True')
      out = jax.tree.map(lambda o, c: o - c.astype(o.dtype), out, correction)
    return out, state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def finish_client(params: PyTree, anchor: PyTree, correction: PyTree, lam: float | None, *,
                  correct: bool = True) -> tuple[PyTree, PyTree]:
  """The end of a client's round: ``(upload, new_correction)``.

  ``new_correction = correction - (x_K - x^t) / lam`` and ``upload = x_K - lam new_correction`` (the paper's
  x_hat_i). ``lam=None`` or ``correct=False``: the upload is x_K and the correction stays.
  """
  _check('finish_client', lam)
  if lam is None or not correct:
    return params, correction
  new = jax.tree.map(lambda c, x, a: c - ((x - a) / lam).astype(c.dtype), correction, params, anchor)
  upload = jax.tree.map(lambda x, c: x - (lam * c).astype(x.dtype), params, new)
  return upload, new


def server_average(mean_upload: PyTree, *, server: str = 'paper', mean_local: PyTree | None = None,
                   correction_sum: PyTree | None = None, num_clients: int | None = None,
                   lam: float | None = None) -> PyTree:
  """The new global model from the round's averages.

  ``server='paper'``: the mean of the uploads x_hat_i. ``server='code'`` (FL-Simulator's ``global_update``):
  ``mean_local + (1 / N) sum over all N clients of h_i``, with ``mean_local`` the mean of the round's x_K,
  ``h_i = -lam g_hat_i`` and ``correction_sum`` the sum of g_hat over all N clients (kept by the server).
  """
  optim_checks.one_of('server_average: server', server, SERVERS)
  if server == 'paper':
    return mean_upload
  if mean_local is None or correction_sum is None or num_clients is None or lam is None:
    raise ValueError("server_average: server='code' needs mean_local, correction_sum, num_clients and lam")
  return jax.tree.map(lambda m, s: m - (lam * s / num_clients).astype(m.dtype), mean_local, correction_sum)


def local_steps(grad_fn: Callable[[PyTree, Any], PyTree], local: optax.GradientTransformation, anchor: PyTree,
                correction: PyTree, batches: Any, *, lam: float | None, alpha: float, rho: float,
                normalize: bool = False, correct: bool = True, mask: jax.Array | None = None) -> PyTree:
  """K FedSpeed local steps from ``anchor`` over ``batches`` (leading axis K); returns x_K.

  ``grad_fn(params, batch)`` is the client's stochastic gradient; ``local`` the optimizer chained after
  :func:`prox_correction` (the paper's: ``optax.sgd(eta)``), re-initialised every round as in the paper and the
  code. ``mask`` (bool ``[K]``) skips steps (a client with fewer batches than K: the parameters and the optimizer
  state stay).
  """
  _check('local_steps', lam, alpha, rho)
  tx = optax.chain(prox_correction(lam, correct=correct), local)
  num = jax.tree.leaves(batches)[0].shape[0]
  mask = jnp.ones((num,), bool) if mask is None else jnp.asarray(mask, bool)

  def step(carry, inputs):
    x, state = carry
    batch, keep = inputs
    g = quasi_gradient(lambda p: grad_fn(p, batch), x, alpha=alpha, rho=rho, normalize=normalize)
    u, new_state = tx.update(g, state, x, anchor=anchor, correction=correction)
    new_x = optax.apply_updates(x, u)
    pick = lambda new, old: jnp.where(keep, new, old)  # noqa: E731
    return (jax.tree.map(pick, new_x, x), jax.tree.map(pick, new_state, state)), None

  (x, _), _ = lax.scan(step, (anchor, tx.init(anchor)), (batches, mask))
  return x


def fedspeed_algorithm(lam: float | None = 10.0, *, alpha: float = 0.9, rho: float = 0.1, normalize: bool = False,
                       correct: bool = True, server: str = 'paper') -> rounds.Algorithm:
  """FedSpeed as hooks of the round engine (:class:`decentral.federated.Algorithm`).

  - table row: the client's g_hat_i (zeros at the start; written back only when the client took part);
  - ``local_gradient``: ``quasi_gradient(step.grad, y) - g_hat_i + (y - x^t) / lam`` (the local optimizer steps
    on it; the paper's is ``optax.sgd(eta)``);
  - ``client``: :func:`finish_client`; sends ``x^t - x_hat_i`` with weight 1 (0 for an empty client): the paper
    and the code average the round's clients unweighted;
  - ``server='code'``: sends ``x^t - x_K`` instead and, after the server optimizer, subtracts lam times the mean
    g_hat over all N clients (``finish``); exact for the server optimizer ``optax.sgd(1.0)``.

  Defaults: lam = 10, a prox weight 1 / lam = 0.1 as the code's ``--lamb 0.1``; rho = 0.1 as the code; alpha = 0.9
  (FLGo's default; the code takes only the perturbed gradient, alpha = 1 with ``normalize=True``).
  """
  _check('fedspeed_algorithm', lam, alpha, rho)
  optim_checks.one_of('fedspeed_algorithm: server', server, SERVERS)
  stateful = lam is not None and correct
  if server == 'code' and not stateful:
    raise ValueError("fedspeed_algorithm: server='code' needs the correction (lam set and correct=True)")

  def init_row(params):
    return jax.tree.map(jnp.zeros_like, params) if stateful else ()

  def local_gradient(step, params, ctx):
    g = quasi_gradient(step.grad, params, alpha=alpha, rho=rho, normalize=normalize)
    direction, _ = prox_correction(lam, correct=correct).update(
        g, ProxCorrectionState(), params, anchor=ctx.global_params, correction=ctx.row if stateful else None)
    return direction

  def client(ctx, tools):
    x_k, loss = tools.train(ctx.global_params)
    if stateful:
      upload, row = finish_client(x_k, ctx.global_params, ctx.row, lam, correct=correct)
    else:
      upload, row = x_k, ctx.row
    sent = x_k if server == 'code' else upload
    update = jax.tree.map(lambda a, b: a - b, ctx.global_params, sent)
    return rounds.ClientOutput(update, (ctx.count > 0).astype(jnp.float32), row, (), loss)

  def add_mean_correction(state, direction):  # the official code's server step
    del direction
    num = jax.tree.leaves(state.table)[0].shape[0]
    params = server_average(None, server='code', mean_local=state.params, num_clients=num, lam=lam,
                            correction_sum=jax.tree.map(lambda t: jnp.sum(t, axis=0), state.table))
    return state._replace(params=params)

  return rounds.Algorithm(name='fedspeed', init_row=init_row, local_gradient=local_gradient, client=client,
                          finish=add_mean_correction if server == 'code' else None)
