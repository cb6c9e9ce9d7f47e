"""Asynchronous federated learning with stochastic aggregation weights: async FedAvg, FedBuff, FedFix.

Fraboni, Vidal, Kameni & Lorenzi, "A General Theory for Federated Optimization with Asynchronous and Heterogeneous
Clients Updates" (arXiv 2206.10189; official code: Accenture/Labs-Federated-Learning, branch ``asynchronous_FL``).
Every scheme is one server rule,

    theta^{n+1} = theta^n + eta_g sum_i omega_i(n) Delta_i(theta^{rho_i(n)}),
    Delta_i(theta) = (client i's model after its local SGD steps from theta) - theta,

where rho_i(n) <= n is the model version client i trained on (its staleness is n - rho_i(n)) and the stochastic
aggregation weight omega_i(n) = d_i if client i contributes to step n, else 0. The paper's result: the iterates
converge to the optimum of the surrogate sum_i q_i f_i with q_i proportional to E[omega_i(n)], which is the
federated optimum sum_i p_i f_i only if E[omega_i(n)] = p_i. Plain asynchronous averaging (d_i = 1) gives
q_i proportional to 1/tau_i (client i's return frequency): fast clients win, and on non-IID data the model is biased
toward their data.

Aggregation weights d_i (:func:`aggregation_weights`, ``kind``):

- ``'participation'`` (default): d_i = p_i / pi_i, pi_i the fraction of server steps client i contributes to
  (from the recorded trace), so E[omega_i] = p_i for every scheme. It is the official code's FedBuff "weight"
  rule applied to all schemes, and equals the closed forms below whenever their assumptions hold; with equally
  fast clients and no delay every step is a full round (pi_i = 1), so async FedAvg is synchronous FedAvg.
  It reads pi_i off the whole trace, i.e. knows the schedule in advance, as the official code's FedBuff weights
  do; a real server would estimate pi_i from the steps so far.
- ``'closed_form'``: the paper's / code's formulas from the clients' nominal times tau_i: async
  d_i = (sum_j 1/tau_j) tau_i p_i; FedFix d_i = ceil(tau_i / Delta t) p_i; FedBuff p_i / pi_i; sync p_i.
- ``'identical'``: no correction, the code's "identical": async d_i = 1, FedBuff d_i = 1/K; FedFix and sync p_i.

Conventions (paper and code agree): Delta_i is applied to the current model, not the one the client trained on;
eta_g = 1 in the paper's experiments. Clients returning at the same instant are aggregated in one step (the code
serialises them, one step each: ``group_ties=False``).

The schedule (who returns when, on which version) comes from :func:`decentral.sim.server.simulate`; the numbers
run along it with :func:`decentral.sim.server.replay` (one jitted local-SGD call per contribution, one jitted
server step per aggregation), so a run replays exactly from its trace.

>>> import jax.numpy as jnp, numpy as np
>>> from decentral.sim.clocks import Clock
>>> from decentral.sim.server import simulate
>>> trace = simulate(Clock(2, scale=[1.0, 2.0]), 'async', total_time=4.0)
>>> aggregation_weights(trace, kind='identical').tolist(), aggregation_weights(trace).tolist()
([1.0, 1.0], [0.5, 1.0])
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from decentral.federated.partitions import ClientData
from decentral.sim import server
from decentral.sim.clocks import Clock

PyTree = Any
WEIGHTS = ('participation', 'closed_form', 'identical')


def aggregation_weights(trace: server.Trace, *, kind: str = 'participation', p=None, taus=None,
                        period: float | None = None, buffer: int | None = None) -> np.ndarray:
  """The per-client aggregation weights d_i of ``trace``'s scheme (see the module docstring).

  Args:
    trace: the recorded schedule (its scheme and participation).
    kind: one of :data:`WEIGHTS`.
    p: the clients' importances p_i (uniform by default).
    taus: nominal compute times tau_i (``'closed_form'`` async and FedFix).
    period: Delta t (``'closed_form'`` FedFix).
    buffer: K (``'identical'`` FedBuff).
  """
  m = trace.num_clients
  p = np.full(m, 1.0 / m) if p is None else np.asarray(p, np.float64)
  if p.shape != (m,) or np.any(p < 0) or not np.isclose(p.sum(), 1.0):
    raise ValueError(f'aggregation_weights: p must be {m} non-negative importances summing to 1, got {p!r}')
  if kind not in WEIGHTS:
    raise ValueError(f'aggregation_weights: kind must be one of {WEIGHTS}, got {kind!r}')
  scheme = trace.scheme
  if scheme == 'sync':
    return p
  if kind == 'identical':
    if scheme == 'async':
      return np.ones(m)
    if scheme == 'fedbuff':
      if buffer is None:
        raise ValueError('aggregation_weights: identical FedBuff weights need buffer (K)')
      return np.full(m, 1.0 / buffer)
    return p
  if kind == 'closed_form' and scheme in ('async', 'fedfix'):
    if taus is None:
      raise ValueError('aggregation_weights: closed_form weights need taus')
    taus = np.asarray(taus, np.float64)
    if scheme == 'async':
      return np.sum(1.0 / taus) * taus * p
    if period is None:
      raise ValueError('aggregation_weights: closed_form FedFix weights need period')
    return np.ceil(taus / period - 1e-12) * p
  pi = trace.participation()
  return np.where(pi > 0, p / np.where(pi > 0, pi, 1.0), 0.0)


def local_sgd_delta(loss_fn: Callable[[PyTree, PyTree], jax.Array], data: ClientData, *, local_steps: int,
                    batch_size: int, learning_rate: float, seed: int = 0) -> Callable[[PyTree, int, int], PyTree]:
  """Client i's Delta_i(theta): ``local_steps`` SGD steps of size ``learning_rate`` on minibatches of
  ``batch_size`` rows drawn uniformly with replacement from its real rows (keyed by (seed, client, task), so a
  replay draws the same batches); a client with no rows returns 0.

  Args:
    loss_fn: ``(params, batch) -> mean loss``; ``batch`` has the fields of ``data.arrays``, ``batch_size`` rows.
    data: every client's padded data (:func:`decentral.federated.partitions.pad`).

  Returns:
    ``client_fn(params, client, task) -> delta``, jitted (one compilation for every client and task).
  """
  counts = jnp.asarray(data.counts)
  arrays = jax.tree.map(jnp.asarray, data.arrays)
  base = jax.random.PRNGKey(seed)

  @jax.jit
  def client_fn(params, client, task):
    key = jax.random.fold_in(jax.random.fold_in(base, client), task)
    n = counts[client]
    rows = jax.tree.map(lambda x: x[client], arrays)

    def step(theta, k):
      idx = jax.random.randint(k, (batch_size,), 0, jnp.maximum(n, 1))
      grads = jax.grad(loss_fn)(theta, jax.tree.map(lambda x: x[idx], rows))
      return jax.tree.map(lambda t, g: t - learning_rate * g, theta, grads), None

    theta, _ = jax.lax.scan(step, params, jax.random.split(key, local_steps))
    keep = (n > 0).astype(jnp.result_type(*jax.tree.leaves(params)))
    return jax.tree.map(lambda t, p0: keep * (t - p0), theta, params)

  return lambda params, client, task: client_fn(params, jnp.int32(client), jnp.int32(task))


@jax.jit
def server_step(params, scaled_weights, deltas, mask):
  """The server rule, jitted once: theta + sum_i mask_i (eta_g d_i) Delta_i; ``scaled_weights`` = eta_g d is the
  server state of a :func:`decentral.sim.server.replay` step (returned unchanged)."""
  w = scaled_weights * jnp.asarray(mask, scaled_weights.dtype)
  stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *deltas)
  update = jax.tree.map(lambda s: jnp.tensordot(w.astype(s.dtype), s, axes=1), stacked)
  return optax.apply_updates(params, update), scaled_weights


def run(params: PyTree, client_fn: Callable[[PyTree, int, int], PyTree], *, clock: Clock | None = None,
        scheme: str = 'async', total_time: float | None = None, trace: server.Trace | None = None,
        weights: str = 'participation', p=None, server_lr: float = 1.0, buffer: int | None = None,
        period: float | None = None, group_ties: bool = True,
        eval_fn: Callable[[PyTree], Any] | None = None, eval_every: float | None = None
        ) -> tuple[PyTree, list[dict], server.Trace]:
  """Sync FedAvg, async FedAvg, FedBuff or FedFix in simulated time (see the module docstring).

  Args:
    params: the initial global model theta^0.
    client_fn: ``(params, client, task) -> Delta`` (e.g. :func:`local_sgd_delta`).
    clock, scheme, total_time, buffer, period, group_ties: the schedule (:func:`decentral.sim.server.simulate`),
      unless a recorded ``trace`` is given (then it is replayed).
    weights: the aggregation weights' ``kind`` (:func:`aggregation_weights`).
    p: the clients' importances (uniform by default).
    server_lr: eta_g.
    eval_fn: if given, ``eval_fn(theta)`` is recorded at the first step at or after every ``eval_every`` of
      simulated time (and after the last step).

  Returns:
    (the final model, the history: one dict per evaluation with ``time``, ``step`` and ``eval``, the trace).
  """
  if trace is None:
    if clock is None or total_time is None:
      raise ValueError('asynchronous.run: give a trace, or a clock and total_time')
    trace = server.simulate(clock, scheme, total_time=total_time, buffer=buffer, period=period,
                            group_ties=group_ties)
  taus = None if clock is None else clock.mean_scale()
  d = aggregation_weights(trace, kind=weights, p=p, taus=taus, period=period, buffer=buffer)
  dtype = jax.tree.leaves(params)[0].dtype
  history: list[dict] = []
  next_eval = [0.0]

  def on_step(s, theta):
    last = s.index == len(trace.steps) - 1
    if eval_fn is not None and (eval_every is not None and s.time >= next_eval[0] or last):
      history.append({'time': s.time, 'step': s.index + 1, 'eval': eval_fn(theta)})
      while eval_every is not None and next_eval[0] <= s.time:
        next_eval[0] += eval_every

  if eval_fn is not None:
    history.append({'time': 0.0, 'step': 0, 'eval': eval_fn(params)})
    next_eval[0] = eval_every or 0.0
  params, _ = server.replay(trace, params, client_fn, server_step, jnp.asarray(server_lr * d, dtype),
                            on_step=on_step)
  return params, history, trace
