"""FedSVD: private federated LoRA where clients train B only and the server re-factorises B A by an SVD each round.

Lee, Park, Lee, Wagner, Seong, Bocklet, Lee, Hwang, "FedSVD: Adaptive Orthogonalization for Private Federated
Learning with LoRA", NeurIPS 2025, arXiv 2505.12805; official code seanie12/fed-svd. A LoRA adapter adds
``(alpha / r) B A`` to a frozen weight W0 (``B`` is ``[d_out, r]``, ``A`` is ``[r, d_in]``). Round t::

    clients:  A frozen; B trained by DP-SGD (per-example clipping, Gaussian noise); upload B_i;
    server:   B = sum_i w_i B_i  (w_i proportional to the clients' sample counts);
              U S V^T = svd(B A) (thin, rank r);   A <- V_r^T (orthonormal rows),   B <- U_r S_r;   send both.

The product B A, hence the model, is unchanged by the re-factorisation (post-processing: it costs no privacy); only
the parametrisation rotates, so the next round's A is ordered by the principal directions of the aggregate update
and, being orthonormal, bounds the gradient of B (``||grad_B|| <= ||grad_{BA}||``). Note: the right singular
vectors of B A lie in the row space of A, so when B A has rank r the re-factorisation keeps span(A) -- the initial
random subspace is never left, and the model class is FFA-LoRA's; what changes is the conditioning of B's problem
(and so the effect of the DP noise). Only a rank-deficient B A (B = 0) lets ``method='svd'`` (the code's full SVD
of the product) complete A outside span(A), with directions the SVD routine picks; ``'qr'`` completes inside it.
The official code re-factorises every ``recalculate_svd_period`` rounds (default 1) after ``svd_warmup_steps``
(default 0): :func:`refactorize_due`.

Baselines of the paper, the same client with another server step (:func:`server_step`): **FFA-LoRA** (A stays the
random frozen init: ``'ffa'``) and **FedAvg-LoRA** (plain DP-LoRA: clients train A and B, the server averages each:
``'fedavg'``). FLoRA and FedEx-LoRA, also in the code, are not here.

Conventions: :func:`refactorize` computes the same factors as the code's ``torch.linalg.svd`` of the d_out x d_in
product (``method='svd'``) but by default through a QR of each factor and an r x r SVD (``method='qr'``, O((d_out +
d_in) r^2) instead of O(d_out d_in min(d))). Singular vectors are defined up to sign, so the two may differ by the
sign of matching columns of B and rows of A; the product and the orthonormality do not. The DP noise is calibrated
by :func:`noise_multiplier` through :mod:`optim.privacy` (``dp_accounting``), counting every round a client could
take part in (a valid bound); the code counts the expected number of participations (``rounds x fraction``), one
argument away.

On the round engine (:class:`decentral.federated.Federated`): the adapters are :class:`LoRA` nodes anywhere in the
parameter tree (the frozen weights closed over by the loss or frozen leaves of the tree);
:func:`fedsvd_algorithm` gives the hooks: DP-SGD gradients on the trainable factors (:func:`private_gradient`),
B-only upload bytes, the server's re-factorisation in ``finish``.

>>> import jax, jax.numpy as jnp
>>> b, a = jax.random.normal(jax.random.key(0), (5, 2)), jax.random.normal(jax.random.key(1), (2, 4))
>>> b2, a2 = refactorize(b, a)
>>> bool(jnp.allclose(b2 @ a2, b @ a, atol=1e-5)), bool(jnp.allclose(a2 @ a2.T, jnp.eye(2), atol=1e-5))
(True, True)
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from decentral import checks, ledger
from decentral.federated import rounds
from optim import checks as optim_checks
from optim.privacy import accounting, dpsgd

PyTree = Any
METHODS = ('qr', 'svd')
SERVERS = ('fedsvd', 'ffa', 'fedavg')
ACCOUNTING = ('every_round', 'expected')


class LoRA(NamedTuple):
  """One adapter: ``b`` ``[d_out, r]``, ``a`` ``[r, d_in]``; the layer adds ``scale * b @ a`` to its weight."""

  b: jax.Array
  a: jax.Array


def is_lora(node: Any) -> bool:
  return isinstance(node, LoRA)


def init_lora(key: jax.Array, d_out: int, d_in: int, rank: int, dtype=jnp.float32) -> LoRA:
  """PEFT's default init, which the code uses: ``B = 0``, ``A ~ U(-1/sqrt(d_in), 1/sqrt(d_in))``
  (``kaiming_uniform_(a=sqrt(5))`` on a ``[r, d_in]`` weight)."""
  for value, name in ((d_out, 'd_out'), (d_in, 'd_in'), (rank, 'rank')):
    checks.positive_int(value, f'init_lora: {name}')
  bound = 1.0 / math.sqrt(d_in)
  return LoRA(jnp.zeros((d_out, rank), dtype), jax.random.uniform(key, (rank, d_in), dtype, -bound, bound))


def adapter_weight(adapter: LoRA, scale: float = 1.0) -> jax.Array:
  """The weight the adapter adds, ``scale * b @ a`` (``scale`` is LoRA's alpha / r)."""
  return scale * adapter.b @ adapter.a


def refactorize(b: jax.Array, a: jax.Array, *, method: str = 'qr') -> tuple[jax.Array, jax.Array]:
  """``(U_r S_r, V_r^T)`` from the thin SVD ``b @ a = U S V^T``: the same product, ``a`` with orthonormal rows.

  ``method='qr'``: ``b = Q_b R_b``, ``a^T = Q_a R_a``, ``svd(R_b R_a^T) = U' S V'^T``, then ``U = Q_b U'`` and
  ``V = Q_a V'``, exact in exact arithmetic (needs ``r <= d_out`` and ``r <= d_in``). ``method='svd'``: the SVD of
  the product, as the official code. A rank-deficient product (B = 0 at the first round) still gives an
  orthonormal ``a``; the directions beyond its rank are then arbitrary and ``b``'s columns there are 0.
  """
  optim_checks.one_of('refactorize: method', method, METHODS)
  (d_out, r), (r2, d_in) = b.shape, a.shape
  if r != r2:
    raise ValueError(f'refactorize: b is [d_out, r] and a is [r, d_in]; got shapes {b.shape} and {a.shape}')
  if r > min(d_out, d_in):
    raise ValueError(f'refactorize: the rank r={r} must not exceed d_out={d_out} and d_in={d_in}')
  if method == 'svd':
    u, s, vt = jnp.linalg.svd(b @ a, full_matrices=False)
    return u[:, :r] * s[:r], vt[:r]
  qb, rb = jnp.linalg.qr(b)
  qa, ra = jnp.linalg.qr(a.T)
  u, s, vt = jnp.linalg.svd(rb @ ra.T)
  return (qb @ u) * s, vt @ qa.T


def refactorize_tree(adapters: PyTree, *, method: str = 'qr') -> PyTree:
  """:func:`refactorize` applied to every :class:`LoRA` node of ``adapters`` (other leaves pass unchanged)."""

  def one(node):
    return LoRA(*refactorize(node.b, node.a, method=method)) if is_lora(node) else node

  return jax.tree.map(one, adapters, is_leaf=is_lora)


def refactorize_due(round_index: int | jax.Array, *, period: int = 1, warmup: int = 0) -> jax.Array | bool:
  """Whether the server re-factorises after round ``round_index`` (0-based): the code's
  ``(t + 1) % recalculate_svd_period == 0 and t + 1 > svd_warmup_steps``; ``period=0`` never (FFA-LoRA)."""
  checks.non_negative_int(period, 'refactorize_due: period')
  checks.non_negative_int(warmup, 'refactorize_due: warmup')
  if period == 0:
    return False
  t = round_index + 1
  return (t % period == 0) & (t > warmup)


def server_step(mean_b: PyTree, a: PyTree, *, server: str = 'fedsvd', mean_a: PyTree | None = None,
                method: str = 'qr') -> tuple[PyTree, PyTree]:
  """The server's new ``(B, A)`` trees from the weighted mean of the clients' B (and A for ``'fedavg'``).

  ``'fedsvd'``: :func:`refactorize` of ``(mean_b, a)`` at every adapter; ``'ffa'``: ``(mean_b, a)``, A frozen;
  ``'fedavg'``: ``(mean_b, mean_a)``, the factors averaged separately (whose product is not the mean product).
  ``mean_b`` and ``a`` are trees of the same structure with a ``[d_out, r]`` / ``[r, d_in]`` leaf per adapter.
  """
  optim_checks.one_of('server_step: server', server, SERVERS)
  if server == 'ffa':
    return mean_b, a
  if server == 'fedavg':
    if mean_a is None:
      raise ValueError("server_step: server='fedavg' needs mean_a (the clients' mean A)")
    return mean_b, mean_a
  pairs = jax.tree.map(lambda b_, a_: LoRA(*refactorize(b_, a_, method=method)), mean_b, a)
  b_new = jax.tree.map(lambda p: p.b, pairs, is_leaf=is_lora)
  a_new = jax.tree.map(lambda p: p.a, pairs, is_leaf=is_lora)
  return b_new, a_new


def noise_multiplier(target_epsilon: float, delta: float, *, sampling_rate: float, local_steps: int, rounds: int,
                     participation: float = 1.0, accounting_rule: str = 'every_round',
                     accountant: str = 'rdp') -> float:
  """The DP-SGD noise multiplier giving each client's records (epsilon, delta)-DP over the whole run.

  A client's run is ``steps`` Poisson-subsampled Gaussian steps at rate q (:func:`optim.privacy.noise_multiplier_for`):
  ``'every_round'`` counts ``local_steps x rounds`` (a client may be sampled every round: a valid bound, the
  default); ``'expected'`` counts ``local_steps x rounds x participation``, the official code's ``n_iter x n_rnds x
  frac`` (an average, not a bound). The server's re-factorisation is post-processing and costs nothing.
  """
  optim_checks.one_of('noise_multiplier: accounting_rule', accounting_rule, ACCOUNTING)
  checks.positive_int(local_steps, 'noise_multiplier: local_steps')
  checks.positive_int(rounds, 'noise_multiplier: rounds')
  checks.fraction(participation, 'noise_multiplier: participation')
  steps = local_steps * rounds
  if accounting_rule == 'expected':
    steps = max(1, int(round(steps * participation)))
  return accounting.noise_multiplier_for(target_epsilon, sampling_rate, steps, delta, accountant=accountant)


def trainable_mask(params: PyTree, server: str = 'fedsvd', *, train_others: bool = False) -> PyTree:
  """A bool per leaf of ``params``: the ``b`` of every :class:`LoRA` node (and its ``a`` for ``'fedavg'``), the
  other leaves when ``train_others`` (e.g. a classification head; the paper's code freezes it)."""
  optim_checks.one_of('trainable_mask: server', server, SERVERS)

  def node(n):
    if is_lora(n):
      return LoRA(True, server == 'fedavg')
    return jax.tree.map(lambda _: train_others, n)

  return jax.tree.map(node, params, is_leaf=is_lora)


def private_gradient(per_example: PyTree, trainable: PyTree, mask: jax.Array, key: jax.Array, *,
                     l2_norm_clip: float, noise_multiplier: float, sampling_rate: float = 1.0) -> PyTree:
  """DP-SGD's gradient on the trainable leaves, zero on the frozen ones.

  Rows are kept with probability q = ``sampling_rate`` among the real ones (``mask``): a Poisson sample when the
  rows are the client's whole data (Opacus's loader in the official code); then
  ``(sum_i clip(g_i, C) + N(0, (sigma C)^2 I)) / (q n)`` with n the real rows, the norm and the noise over the
  trainable leaves only (:func:`optim.dp_sgd_aggregate`, ``reduction='sum'``, its noise drawn from ``key``), so a
  frozen A spends no clipping budget and gets no noise.
  """
  keep = mask
  if sampling_rate < 1:
    keep = mask & (jax.random.uniform(jax.random.fold_in(key, 0), mask.shape) < sampling_rate)
  zeroed = jax.tree.map(lambda g, t: jnp.where(t, g, jnp.zeros_like(g)), per_example, trainable)
  aggregate = dpsgd.dp_sgd_aggregate(l2_norm_clip, noise_multiplier, reduction='sum')
  state = dpsgd.DPAggregateState(jax.random.fold_in(key, 1), jnp.zeros([], jnp.int32))
  total, _ = aggregate.update(zeroed, state, mask=keep)
  divisor = jnp.maximum(sampling_rate * jnp.sum(mask), 1e-12)
  return jax.tree.map(lambda s, t: jnp.where(t, s / divisor.astype(s.dtype), jnp.zeros_like(s)), total, trainable)


def fedsvd_algorithm(server: str = 'fedsvd', *, l2_norm_clip: float = 2.0, noise_multiplier: float = 0.0,
                     sampling_rate: float = 1.0, train_others: bool = False, period: int = 1, warmup: int = 0,
                     method: str = 'qr') -> rounds.Algorithm:
  """FedSVD (``'fedsvd'``), FFA-LoRA (``'ffa'``) or FedAvg-LoRA (``'fedavg'``, plain DP-LoRA) on the round engine.

  The model's adapters are :class:`LoRA` nodes of the parameter tree. Every local step feeds the local optimizer
  (the paper's: ``optax.sgd``) :func:`private_gradient` of the batch's per-example gradients (use
  ``Local(batch_size=None)`` for Poisson sampling from the client's data at ``sampling_rate``; with minibatches
  the draw is within the batch). Clients send ``x^t - y_K`` with weight n_i (the code's train-size ratio), counted
  as the bytes of the trainable leaves; the server's mean update moves them; ``finish`` then re-factorises every
  adapter when :func:`refactorize_due` (FedSVD only). The download counts every parameter every round (FedSVD
  re-broadcasts A). Defaults: the code's clip 2.0 and period 1; ``noise_multiplier`` from :func:`noise_multiplier`.
  """
  optim_checks.one_of('fedsvd_algorithm: server', server, SERVERS)
  optim_checks.check('fedsvd_algorithm: l2_norm_clip', l2_norm_clip, lambda v: v > 0, 'positive')
  optim_checks.non_negative('fedsvd_algorithm: noise_multiplier', noise_multiplier)
  checks.fraction(sampling_rate, 'fedsvd_algorithm: sampling_rate')

  def local_gradient(step, params, ctx):
    del ctx
    return private_gradient(step.per_example_grads(params), trainable_mask(params, server, train_others=train_others),
                            step.mask, step.key, l2_norm_clip=l2_norm_clip, noise_multiplier=noise_multiplier,
                            sampling_rate=sampling_rate)

  def client(ctx, tools):
    y, loss = tools.train(ctx.global_params)
    update = jax.tree.map(lambda a, b: a - b, ctx.global_params, y)
    trainable = trainable_mask(update, server, train_others=train_others)
    sent = sum(ledger.dense_nbytes(u) for u, t in zip(jax.tree.leaves(update), jax.tree.leaves(trainable))
               if t)
    return rounds.ClientOutput(update, ctx.count.astype(jnp.float32), ctx.row, (), loss, sent)

  def refactorize_when_due(state, direction):
    del direction
    due = refactorize_due(state.round - 1, period=period, warmup=warmup)
    new = refactorize_tree(state.params, method=method)
    params = jax.tree.map(lambda u, v: jnp.where(due, u, v).astype(v.dtype), new, state.params)
    return state._replace(params=params)

  return rounds.Algorithm(name='fedavg_lora' if server == 'fedavg' else server, local_gradient=local_gradient,
                          client=client, finish=refactorize_when_due if server == 'fedsvd' else None)
