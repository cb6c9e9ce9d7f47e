"""The federated round engine: sampled clients train in lock-step on the worker axis, a server optimizer moves the
global model by their aggregated update.

One round t, for the m slots a :class:`~decentral.federated.sampling.Sampler` fills with clients S_t::

    broadcast b_t = algorithm.broadcast(state, counts)                    (server -> every sampled client)
    client i in S_t (one worker of the axis, vmap / shard_map / pmap):
        y_0 = x_t;  y_{k+1} = y_k + optimizer(algorithm.local_gradient(batch_k, y_k))   k < K_i
        Delta_i = x_t - y_K                                                 (the pseudo-gradient, sent up)
    direction = algorithm.aggregate(...)      default  sum_i n_i Delta_i / sum_i n_i   (collectives on the axis)
    x_{t+1} = x_t + server_optimizer(direction)    FedAvg: optax.sgd(1.0), i.e. x_{t+1} = sum_i n_i y_K^i / sum n_i

Every hook has FedAvg's default (:class:`Algorithm`): an algorithm replaces only what differs (FedProx its
``local_gradient``; FedVARP its ``aggregate`` and a per-client table; FedAMD its ``client``).

Data. Each slot gathers its client's padded rows by client index (``ClientData`` from
:mod:`decentral.federated.partitions`) with the client's count n_i; local batches are masked, so clients of
unequal sizes (including n_i = 0: no step, weight 0) share one compilation. The local data are walked in
passes: each pass is an ordering of the client's n_i rows (a fresh pseudo-random permutation by default;
``Algorithm.order`` for curricula), cut into ceil(n_i / b) batches, the last one partial (PyTorch's DataLoader
without drop_last). ``Local(steps=K)`` runs K steps through successive passes; ``Local(epochs=E)`` runs
E ceil(n_i / b) steps, so the lock-step loop has E ceil(max_n / b) steps and masks the rest.
``batch_size=None`` is full-batch: one step is one pass. A round's local optimizer state starts fresh (clients
are stateless across rounds unless their algorithm keeps a table row).

State. :class:`ServerState` holds the global parameters, the server optimizer's state, a per-client table (one
row per client: FedVARP's stale updates, FedSpeed's correction h_i, FedAMD's anchor gradients; gathered for the
sampled clients before the round and written back for the active ones after), the algorithm's own server state,
the run key and the round. Every random draw is ``fold_in`` of the run key by round, then by client id (never by
slot), so a run is a function of its seed, and a restored state continues bit for bit (orbax: see
``tests/decentral/test_conformance_decentral.py``). With a sampler drawing with replacement, a client drawn twice
trains twice and one of its two rows is kept.

Bytes. Each active client's upload (default: the dense bytes of its update and message) and download (the
parameters and the broadcast) are returned per slot in :class:`RoundMetrics`; :func:`record` adds them to a
:class:`decentral.ledger.Ledger` of N clients.

>>> import jax, jax.numpy as jnp, numpy as np, optax
>>> from decentral.federated import partitions, sampling
>>> data = partitions.pad({'x': np.arange(8.0)}, partitions.iid(8, 4, seed=0))
>>> loss = lambda w, batch: 0.5 * (w - batch['x']) ** 2       # per-example losses
>>> fed = Federated(loss, data, local=Local(optax.sgd(1.0), steps=1), sampler=sampling.everyone(4))
>>> state, metrics = fed.round(fed.init(jnp.zeros(()), jax.random.key(0)))
>>> float(state.params)  # one full-batch step of lr 1 on every client, averaged: the mean of the data
3.5
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from decentral import axis, checks, ledger
from decentral.federated.partitions import ClientData
from decentral.federated.sampling import Sampler, Selection

PyTree = Any
LossFn = Callable[[PyTree, PyTree], jax.Array]  # (params, batch) -> per-example losses [b]


class Local(NamedTuple):
  """Local training: any optax ``optimizer``, for ``steps`` K steps or ``epochs`` E passes, batches of
  ``batch_size`` (None: the client's whole data each step). ``update_args(step)`` returns extra keyword arguments
  for ``optimizer.update`` (e.g. a mask for DP-SGD), None for none."""

  optimizer: optax.GradientTransformation
  steps: int | None = None
  epochs: int | None = None
  batch_size: int | None = None
  update_args: Callable[['LocalStep'], dict] | None = None


class ClientContext(NamedTuple):
  """What a client knows in a round (one slot of the worker axis)."""

  global_params: PyTree   # x_t, a varying copy (differentiable per worker under shard_map)
  client: jax.Array       # int32 client id
  active: jax.Array       # bool: the client participates (False: a Bernoulli sampler left the slot empty)
  inclusion: jax.Array    # pi_i = P(client in the round) under the sampler's law
  count: jax.Array        # n_i, the client's number of samples (int32; 0 when inactive)
  row: PyTree             # the client's row of the per-client table
  broadcast: PyTree       # the server's message of this round (Algorithm.broadcast; counted as downlink)
  key: jax.Array          # fold_in(fold_in(run key, round), client): this client's randomness this round
  round: jax.Array        # t (int32)
  axis_name: str          # the worker axis, for collectives in Algorithm.aggregate
  server: PyTree = ()     # server-side values for Algorithm.aggregate (Algorithm.prepare; never sent)


class LocalStep(NamedTuple):
  """One local step's batch, as given to ``Algorithm.local_gradient``."""

  data: PyTree                                # the batch (leaves [b, ...]); masked rows are padding
  mask: jax.Array                             # bool [b]
  grad: Callable[[PyTree], PyTree]            # p -> gradient of the masked mean loss on this batch at p
  value_and_grad: Callable[[PyTree], tuple]   # p -> (masked mean loss, gradient)
  per_example_grads: Callable[[PyTree], PyTree]  # p -> per-example gradients (leaves [b, ...]), masked rows zero
  index: jax.Array                            # the step k (int32)
  key: jax.Array                              # this step's key


class ClientOutput(NamedTuple):
  """What a client returns: ``update`` (aggregated), ``weight`` (its aggregation weight), its new table ``row``,
  an extra ``message`` for the server (counted in bytes), the mean local ``loss``, and ``sent`` bytes (None: the
  dense bytes of update and message)."""

  update: PyTree
  weight: jax.Array
  row: PyTree
  message: PyTree = ()
  loss: Any = 0.0  # a Python float, not an array: importing the package must not start a JAX backend
  sent: Any = None


class Tools(NamedTuple):
  """The engine's pieces a custom ``Algorithm.client`` may call.

  ``train(params, local_gradient=None) -> (params, mean loss)``: the local loop from ``params`` (the algorithm's
  ``local_gradient`` unless another is given); ``full_gradient(params)``: the gradient of the mean loss over all
  n_i samples; ``loss_fn``: the per-example loss; ``data``, ``mask``: the client's padded rows and their mask.
  """

  train: Callable[..., tuple]
  full_gradient: Callable[[PyTree], PyTree]
  loss_fn: LossFn
  data: PyTree
  mask: jax.Array


class ServerState(NamedTuple):
  params: PyTree      # x_t
  opt_state: Any      # the server optimizer's state
  table: PyTree       # per-client rows, leaves [N, ...]
  extra: PyTree       # the algorithm's server state
  key: jax.Array      # the run key
  round: jax.Array    # t (int32)


class RoundMetrics(NamedTuple):
  """Per slot: client id, active, bytes up (``sent``) and down (``received``), mean local loss, weight."""

  clients: jax.Array
  active: jax.Array
  sent: jax.Array
  received: jax.Array
  loss: jax.Array
  weight: jax.Array


# ---------------------------------------------------------------------------------------------- FedAvg's hooks


def weighted_mean(tree: PyTree, weight: jax.Array, axis_name: str) -> PyTree:
  """sum_i w_i tree_i / sum_i w_i over the axis; zero (not 0/0) when every weight is zero."""
  total = lax.psum(weight, axis_name)
  scale = jnp.where(total > 0, weight / jnp.where(total > 0, total, 1), 0)
  return jax.tree.map(lambda x: lax.psum((scale * x).astype(x.dtype), axis_name), tree)


def default_local_gradient(step: LocalStep, params: PyTree, ctx: ClientContext) -> PyTree:
  """The plain stochastic gradient of the batch."""
  del ctx
  return step.grad(params)


def default_client(ctx: ClientContext, tools: Tools) -> ClientOutput:
  """FedAvg's client: train locally from x_t, send Delta = x_t - y_K with weight n_i."""
  y, loss = tools.train(ctx.global_params)
  update = jax.tree.map(lambda a, b: a - b, ctx.global_params, y)
  return ClientOutput(update, ctx.count.astype(jnp.float32), ctx.row, (), loss)


def default_aggregate(out: ClientOutput, ctx: ClientContext) -> PyTree:
  """sum_i w_i Delta_i / sum_i w_i over the active clients (w_i = n_i by default)."""
  return weighted_mean(out.update, out.weight, ctx.axis_name)


def mix32(x: jax.Array) -> jax.Array:
  """A bijective 32-bit integer mixer (lowbias32, C. Wellons): a cheap hash, for shuffles inside the loop."""
  x = x.astype(jnp.uint32)
  x = (x ^ (x >> 16)) * jnp.uint32(0x7FEB352D)
  x = (x ^ (x >> 15)) * jnp.uint32(0x846CA68B)
  return x ^ (x >> 16)


def default_order(data: PyTree, count: jax.Array, key: jax.Array, ctx: ClientContext) -> jax.Array:
  """A pseudo-random permutation of the client's ``count`` rows, padding rows last (int32 [max_n]).

  Rows are sorted by a hash of (row, key), not by threefry uniforms: as good a shuffle for batching, and it keeps
  threefry out of the local loop, which halves the round's compile time.
  """
  del ctx
  max_n = jax.tree.leaves(data)[0].shape[0]
  seed = jax.random.key_data(key).reshape(-1).astype(jnp.uint32)
  salt = mix32(seed[0] ^ mix32(seed[-1]))
  u = mix32(jnp.arange(max_n, dtype=jnp.uint32) * jnp.uint32(0x9E3779B9) ^ salt)
  u = jnp.where(jnp.arange(max_n) < count, u >> 1, jnp.uint32(0xFFFFFFFF))  # real rows first
  return jnp.argsort(u, stable=False).astype(jnp.int32)  # distinct keys: stability is moot


def _nothing(params):
  del params
  return ()


class Algorithm(NamedTuple):
  """A federated algorithm as the hooks where it differs from FedAvg (every default is FedAvg's).

  - ``init_row(params) -> row``: one client's initial row of the per-client table (``()``: no table);
  - ``init_extra(params) -> extra``: the algorithm's server state;
  - ``init_client(params, tools: Tools) -> row``: a client's initial row from its data (FedAMD's first full
    gradients); run for all N clients by ``Federated.init``; supersedes ``init_row`` for the values;
  - ``broadcast(state: ServerState, counts) -> tree``: computed by the server before the round, sent to every
    client (``ctx.broadcast``, counted as downlink); ``counts`` are all N clients' sample counts;
  - ``prepare(state: ServerState, counts) -> tree``: server-side values the aggregation needs (``ctx.server``:
    FedVARP's mean of the stale updates), not sent, not counted;
  - ``local_gradient(step: LocalStep, params, ctx) -> grads``: what the local optimizer is fed each step; with
    ``local_state(params, ctx) -> s`` set, it is ``local_gradient(step, params, ctx, s) -> (grads, s)`` and s is
    carried across the local steps (FedAMD's recursive gradient estimate);
  - ``client(ctx, tools: Tools) -> ClientOutput``: the whole client procedure (default: train, send x_t - y_K);
  - ``aggregate(out: ClientOutput, ctx) -> direction``: on the worker axis (collectives on ``ctx.axis_name``),
    the pseudo-gradient handed to the server optimizer; inactive slots have weight 0;
  - ``finish(state: ServerState, direction) -> ServerState``: after the server optimizer (FedSVD's
    re-factorisation), given the state with the new parameters;
  - ``order(data, count, key, ctx) -> perm``: the order of a pass over the client's rows (curricula), int32
    [max_n] with the ``count`` real rows first;
  - ``select(state, sampler, key) -> Selection``: the round's clients (default ``sampler.sample(key)``);
  - ``server_optimizer``: the server optimizer the method comes with (FedAdam: Adam); None: FedAvg's SGD with
    lr 1. ``Federated(server_optimizer=...)`` overrides it.
  """

  name: str = 'fedavg'
  init_row: Callable[[PyTree], PyTree] = _nothing
  init_extra: Callable[[PyTree], PyTree] = _nothing
  broadcast: Callable[[ServerState, jax.Array], PyTree] | None = None
  local_gradient: Callable[[LocalStep, PyTree, ClientContext], PyTree] = default_local_gradient
  client: Callable[[ClientContext, Tools], ClientOutput] = default_client
  aggregate: Callable[[ClientOutput, ClientContext], PyTree] = default_aggregate
  finish: Callable[[ServerState, PyTree], ServerState] | None = None
  order: Callable[[PyTree, jax.Array, jax.Array, ClientContext], jax.Array] = default_order
  select: Callable[[ServerState, Sampler, jax.Array], Selection] | None = None
  server_optimizer: optax.GradientTransformation | None = None
  init_client: Callable[[PyTree, 'Tools'], PyTree] | None = None
  prepare: Callable[[ServerState, jax.Array], PyTree] | None = None
  local_state: Callable[[PyTree, ClientContext], PyTree] | None = None


FEDAVG = Algorithm()


# ---------------------------------------------------------------------------------------------- the local loop


def masked_mean(losses: jax.Array, mask: jax.Array) -> jax.Array:
  """sum of the masked losses / number of real rows (0 for an all-padding batch, never 0/0)."""
  m = mask.astype(losses.dtype)
  return jnp.sum(losses * m) / jnp.maximum(jnp.sum(m), 1)


def _where(pred, new, old):
  return jax.tree.map(lambda a, b: jnp.where(pred, a, b), new, old)


def _gradients(loss_fn, batch, mask):
  """The value-and-gradient, gradient and per-example gradients of the masked mean loss on one batch."""
  mean_loss = lambda p: masked_mean(loss_fn(p, batch), mask)
  value_and_grad = jax.value_and_grad(mean_loss)

  def per_example(p):
    one = lambda ex: jax.grad(lambda q: loss_fn(q, jax.tree.map(lambda a: a[None], ex))[0])(p)
    grads = jax.vmap(one)(batch)
    return jax.tree.map(lambda g: g * mask.reshape((-1,) + (1,) * (g.ndim - 1)).astype(g.dtype), grads)

  return value_and_grad, (lambda p: value_and_grad(p)[1]), per_example


def _sizes(local: Local, max_n: int) -> tuple[int, int]:
  """(batch size b, lock-step number of local steps)."""
  b = max_n if local.batch_size is None else min(local.batch_size, max_n)
  return b, (local.steps if local.steps is not None else local.epochs * -(-max_n // b))


def _batch(data, count, k, b, perms):
  """Step k's batch: pass p = k // ceil(n_i / b) (in the order ``perms[p]``), batch k mod ceil(n_i / b) of it."""
  max_n = jax.tree.leaves(data)[0].shape[0]
  per_pass = jnp.maximum((count + b - 1) // b, 1)
  p, j = k // per_pass, k % per_pass
  pos = j * b + jnp.arange(b)
  idx = perms[jnp.minimum(p, perms.shape[0] - 1)][jnp.minimum(pos, max_n - 1)]
  return jax.tree.map(lambda a: a[idx], data), pos < count


def local_train(loss_fn: LossFn, local: Local, algorithm: Algorithm, ctx: ClientContext, data: PyTree,
                params: PyTree, local_gradient=None) -> tuple[PyTree, jax.Array]:
  """The local loop of one client from ``params``: (final parameters, mean loss of the first batch at ``params``).

  Steps past the client's own count (K, or E ceil(n_i / b)) are masked: parameters and optimizer state unchanged.
  """
  local_gradient = local_gradient or algorithm.local_gradient
  max_n = jax.tree.leaves(data)[0].shape[0]
  b, total = _sizes(local, max_n)
  count = ctx.count
  own = (jnp.where(count > 0, local.steps, 0) if local.steps is not None
         else local.epochs * ((count + b - 1) // b))
  # The passes' orders are drawn here, vectorised, not in the loop body (threefry inside a scan body doubles the
  # compile time): one order per pass, at most K passes (or E). A step key unused by the algorithm is dead code.
  passes = local.steps if local.steps is not None else local.epochs
  perms = jax.vmap(lambda kk: algorithm.order(data, count, kk, ctx))(
      jax.random.split(jax.random.fold_in(ctx.key, 0), passes))
  step_root = jax.random.fold_in(ctx.key, 1)

  stateful = algorithm.local_state is not None

  def body(carry, k):
    y, opt, state = carry
    step_key = jax.random.fold_in(step_root, k)
    batch, mask = _batch(data, count, k, b, perms)
    value_and_grad, grad, per_example = _gradients(loss_fn, batch, mask)
    step = LocalStep(batch, mask, grad, value_and_grad, per_example, k, step_key)
    if stateful:
      g, new_state = local_gradient(step, y, ctx, state)
    else:
      g, new_state = local_gradient(step, y, ctx), state
    extra = local.update_args(step) if local.update_args is not None else {}
    u, new_opt = local.optimizer.update(g, opt, y, **extra)
    new_y = optax.apply_updates(y, u)
    valid = k < own
    carry = (_where(valid, new_y, y), _where(valid, new_opt, opt), _where(valid, new_state, state))
    return axis.varying(carry, ctx.axis_name), None

  state = algorithm.local_state(params, ctx) if stateful else ()
  carry = axis.varying((params, local.optimizer.init(params), state), ctx.axis_name)
  (y, _, _), _ = lax.scan(body, carry, jnp.arange(total, dtype=jnp.int32))
  # The metric, one forward pass a round: the loss of the first batch at the starting point.
  first, mask = _batch(data, count, jnp.int32(0), b, perms)
  return y, masked_mean(loss_fn(params, first), mask).astype(jnp.float32)


# ---------------------------------------------------------------------------------------------- the engine


def _rows_like(table, clients):
  return jax.tree.map(lambda t: t[clients], table)


class Federated:
  """Federated training of ``loss_fn`` on ``data``: ``init(params, key)``, then ``round(state)`` per round.

  Args:
    loss_fn: ``(params, batch) -> per-example losses [b]`` (the batch has the fields of ``data.arrays``).
    data: every client's padded data (:class:`~decentral.federated.partitions.ClientData`).
    local: local training (:class:`Local`): optimizer, K steps or E epochs, batch size.
    sampler: the clients of a round (:mod:`decentral.federated.sampling`); ``sampler.slots`` workers.
    algorithm: the hooks (:class:`Algorithm`); FedAvg by default.
    server_optimizer: an optax transform of the pseudo-gradient (see :mod:`decentral.federated.fedopt` for
      FedAvg, FedAvgM, FedAdam, FedYogi); by default the algorithm's own, else ``optax.sgd(1.0)`` (FedAvg).
    backend: ``'vmap'``, ``'shard_map'`` or ``'pmap'`` (the latter two need ``sampler.slots`` devices).
    axis_name: the worker axis the clients run on.
  """

  def __init__(self, loss_fn: LossFn, data: ClientData, *, local: Local, sampler: Sampler,
               algorithm: Algorithm = FEDAVG, server_optimizer: optax.GradientTransformation | None = None,
               backend: str = 'vmap', axis_name: str = 'clients', devices=None):
    if (local.steps is None) == (local.epochs is None):
      raise ValueError(f'federated: give exactly one of local.steps and local.epochs, got {local.steps!r}, '
                       f'{local.epochs!r}')
    checks.positive_int(local.steps if local.steps is not None else local.epochs, 'federated: local steps/epochs')
    if local.batch_size is not None:
      checks.positive_int(local.batch_size, 'federated: local.batch_size')
    if sampler.num_clients != data.num_clients:
      raise ValueError(f'federated: the sampler draws from {sampler.num_clients} clients, the data has '
                       f'{data.num_clients}')
    self.loss_fn, self.local, self.sampler, self.algorithm = loss_fn, local, sampler, algorithm
    self.server_optimizer = next(o for o in (server_optimizer, algorithm.server_optimizer, optax.sgd(1.0))
                                 if o is not None)
    self.backend, self.axis_name = backend, axis_name
    self.arrays = jax.tree.map(jnp.asarray, data.arrays)
    self.counts = jnp.asarray(data.counts, jnp.int32)
    self.num_clients = data.num_clients
    stacked = 0
    self._clients = axis.run(self._client, sampler.slots, axis_name=axis_name, backend=backend, devices=devices,
                             in_axes=(None, None, None) + (stacked,) * 7)
    self._select = jax.jit(self._select_fn)
    self._serve = jax.jit(self._serve_fn)
    # One jitted round (the worker-axis step inlined) for vmap and shard_map; pmap runs as its own computation.
    # The client data are arguments of the jitted functions, not constants baked into them: a closure would make
    # XLA fold (and copy) every client's rows at compile time.
    self._round = jax.jit(self._round_fn) if backend != 'pmap' else None

  # -- state

  def init(self, params: PyTree, key: jax.Array) -> ServerState:
    """The state of round 0: ``params`` and a table of ``algorithm.init_row(params)`` for every client."""
    if self.algorithm.init_client is not None:
      table = jax.jit(self._initial_rows)(params, key, self.arrays, self.counts)
    else:
      row = self.algorithm.init_row(params)
      table = jax.tree.map(lambda r: jnp.broadcast_to(jnp.asarray(r), (self.num_clients,) + jnp.shape(r)).copy(),
                           row)
    return ServerState(params, self.server_optimizer.init(params), table, self.algorithm.init_extra(params), key,
                       jnp.zeros([], jnp.int32))

  def _initial_rows(self, params, key, arrays, counts):
    """``algorithm.init_client`` for every client (a vmap over all N, outside the worker axis)."""
    row = self.algorithm.init_row(params)

    def one(client, data, count):
      ctx = ClientContext(params, client, jnp.bool_(True), jnp.float32(1), count, row, (),
                          jax.random.fold_in(key, client), jnp.int32(-1), None)
      return self.algorithm.init_client(params, self._tools(ctx, data))

    return jax.vmap(one)(jnp.arange(self.num_clients, dtype=jnp.int32), arrays, counts)

  # -- one round, in three parts: select on the server, train on the axis, serve

  def _select_fn(self, state: ServerState, arrays: PyTree, counts: jax.Array):
    round_key = jax.random.fold_in(state.key, state.round)
    sample_key = jax.random.fold_in(round_key, 0)
    select = self.algorithm.select
    sel = self.sampler.sample(sample_key) if select is None else select(state, self.sampler, sample_key)
    broadcast = () if self.algorithm.broadcast is None else self.algorithm.broadcast(state, counts)
    server = () if self.algorithm.prepare is None else self.algorithm.prepare(state, counts)
    client_root = jax.random.fold_in(round_key, 1)
    keys = jax.vmap(lambda c: jax.random.fold_in(client_root, c))(sel.clients)
    stacked = (_rows_like(arrays, sel.clients), counts[sel.clients], sel.clients, sel.active,
               sel.inclusion, _rows_like(state.table, sel.clients), keys)
    return sel, (broadcast, server), stacked

  def _tools(self, ctx, data):
    max_n = jax.tree.leaves(data)[0].shape[0]
    mask = jnp.arange(max_n) < ctx.count

    def full_gradient(p):
      return jax.grad(lambda q: masked_mean(self.loss_fn(q, data), mask))(p)

    return Tools(functools.partial(local_train, self.loss_fn, self.local, self.algorithm, ctx, data),
                 full_gradient, self.loss_fn, data, mask)

  def _client(self, global_params, shared, rnd, data, count, client, active, inclusion, row, key):
    broadcast, server = shared
    ctx = ClientContext(axis.varying(global_params, self.axis_name), client, active, inclusion,
                        jnp.where(active, count, 0), row, broadcast, key, rnd, self.axis_name, server)
    out = self.algorithm.client(ctx, self._tools(ctx, data))
    weight = jnp.asarray(out.weight, jnp.result_type(float))  # float64 under x64: exact weights
    out = out._replace(weight=jnp.where(active, weight, jnp.zeros_like(weight)))
    direction = self.algorithm.aggregate(out, ctx)
    new_row = _where(active, out.row, row)
    up = ledger.dense_nbytes(out.update) + ledger.dense_nbytes(out.message) if out.sent is None else out.sent
    down = ledger.dense_nbytes(global_params) + ledger.dense_nbytes(broadcast)
    zero = jnp.zeros([], jnp.int32)
    sent = jnp.where(active, jnp.asarray(up, jnp.int32), zero)
    received = jnp.where(active, jnp.asarray(down, jnp.int32), zero)
    return direction, new_row, (sent, received, jnp.asarray(out.loss, jnp.float32), out.weight)

  def _serve_fn(self, state: ServerState, sel: Selection, outputs):
    directions, rows, (sent, received, loss, weight) = outputs
    direction = jax.tree.map(lambda d: d[0], directions)  # the same on every slot
    updates, opt_state = self.server_optimizer.update(direction, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    table = jax.tree.map(lambda t, r: t.at[sel.clients].set(r.astype(t.dtype)), state.table, rows)
    new = ServerState(params, opt_state, table, state.extra, state.key, state.round + 1)
    if self.algorithm.finish is not None:
      new = self.algorithm.finish(new, direction)
    return new, RoundMetrics(sel.clients, sel.active, sent, received, loss, weight)

  def _round_fn(self, state: ServerState, arrays: PyTree, counts: jax.Array):
    sel, shared, stacked = self._select_fn(state, arrays, counts)
    outputs = self._clients(state.params, shared, state.round, *stacked)
    return self._serve_fn(state, sel, outputs)

  def round(self, state: ServerState) -> tuple[ServerState, RoundMetrics]:
    """One round: sample, train the sampled clients on the worker axis, aggregate, step the server."""
    if self._round is not None:
      return self._round(state, self.arrays, self.counts)
    sel, shared, stacked = self._select(state, self.arrays, self.counts)
    outputs = self._clients(state.params, shared, state.round, *stacked)
    return self._serve(state, sel, outputs)

  def run(self, state: ServerState, rounds: int, *, led: ledger.Ledger | None = None,
          callback: Callable[[ServerState, RoundMetrics], None] | None = None) -> ServerState:
    """``rounds`` rounds; each round's bytes go to ``led`` (a Ledger of N clients), then ``callback(state, m)``."""
    for _ in range(rounds):
      state, metrics = self.round(state)
      if led is not None:
        record(led, int(state.round) - 1, metrics)
      if callback is not None:
        callback(state, metrics)
    return state


def record(led: ledger.Ledger, step: int, metrics: RoundMetrics) -> int:
  """Adds a round's bytes to ``led`` (a :class:`decentral.ledger.Ledger` of N clients, indexed by client id);
  returns the total bytes sent so far."""
  clients = np.asarray(metrics.clients)
  sent = np.zeros(led.num_workers, np.int64)
  received = np.zeros(led.num_workers, np.int64)
  np.add.at(sent, clients, np.asarray(metrics.sent, np.int64))
  np.add.at(received, clients, np.asarray(metrics.received, np.int64))
  return led.record(step, sent, received)
