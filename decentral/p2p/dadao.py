"""DADAO: decoupled accelerated decentralized asynchronous optimization, event by event on Poisson clocks.

Nabli & Oyallon, "DADAO: Decoupled Accelerated Decentralized Asynchronous Optimization", ICML 2023,
arXiv 2208.00779; the update rules and constants below are those of the official code (AdelNabli/DADAO,
``optimizers.py``, ``DADAO_optimizer``, released with the paper).

Problem: minimise sum_i f_i(x) over n nodes of a graph, each f_i L-smooth and mu-strongly convex. Every node i
holds six variables (x, x~, y, y~, z, z~)_i and two families of independent Poisson clocks drive it:

- a **gradient clock** per node (rate 1 in the paper): at its ticks node i takes a local gradient step;
- a **gossip clock** per edge (i, j) (rate lambda_ij): at its ticks i and j exchange y + z.

Between two events a node's variables follow the linear ODE (nu = mu / 2; d/dt written d)::

  dx = eta (x~ - x),  dx~ = eta (x - x~),  dy = alpha (y~ - y),  dy~ = -theta (nu x~ + y + z),
  dz = alpha (z~ - z),  dz~ = alpha~ (z - z~),

integrated exactly (a 6 x 6 matrix exponential, applied lazily from the node's last event). At a gradient event
of node i, with g = grad f_i(x_i) - nu x_i - y~_i (all after the ODE)::

  x_i -= gamma g,   x~_i -= gamma~ g,   y~_i += (delta + delta~) g;

at a gossip event of edge (i, j), with m = (y_i + z_i) - (y_j + z_j)::

  z_i -= beta m,  z~_i -= beta~ m,  z_j += beta m,  z~_j += beta~ m.

Constants (official code): alpha = sqrt(nu/L)/4, alpha~ = eta = sqrt(nu/L)/8,
theta = sqrt(L/nu)/2, beta = 1/2, beta~ = 2 chi1* sqrt(L/nu), delta = sqrt(nu/L)/4, delta~ = 1, gamma = 1/(4L),
gamma~ = 1/(4 sqrt(L nu)), where chi1* = 1 / (smallest positive eigenvalue of Lambda = sum_ij lambda_ij
(e_i - e_j)(e_i - e_j)^T). The communication rates must make chi1* chi2* <= 1/2 (chi2* = max over edges of
(1/2)(e_i - e_j)^T Lambda^+ (e_i - e_j), the code's ``compute_graph_resistance``); :func:`minimal_edge_rate` gives
the uniform per-edge rate reaching it. The claimed cost is O(n sqrt(L/mu) log(1/eps)) gradients and
O(n sqrt(chi1 chi2) sqrt(L/mu) log(1/eps)) communications (abstract); with n gradients per unit time, the error
then decays like exp(-c t sqrt(mu/L)) in simulated time.

Sources. The ODE, the jumps and the constants are read from the official code; the condition chi1* chi2* <= 1/2
is the code's documented choice ``lamb_mix = sqrt(2 chi_1 chi_2)`` (total gossip rate, chi of the edge-probability
Laplacian), which is the same condition since both chi scale as 1 / rate. Not covered: the time-varying graphs
(the code cycles through a list of graphs) and the stochastic-gradient variant with its running average.

Conventions. The official code draws one global gradient process of rate n (a uniform node per tick) and one
global gossip process of rate sum lambda_ij (a uniform edge per tick); :func:`dadao_events` draws one independent
clock per node and per edge instead (the paper's model). The two are equal in law; per-node clocks make the trace
of a node independent of the others (``edge_rates`` gives non-uniform rates, e.g. from the paper's SDP).

The run is two steps, as in :mod:`decentral.sim.server`: :func:`dadao_events` records an :class:`EventTrace`
(host, numpy; JSON round trip), and :func:`dadao_run` replays it (arrays of shape (n, d)), one compiled scan over
the events, or :func:`dadao_replay`, a host loop of jitted per-event updates; replaying a trace gives the same
numbers bit for bit.

A non-accelerated baseline on the same clocks, :func:`primal_dual_run`, replays a trace with the asynchronous
primal-dual gradient method (Arrow-Hurwicz) on the consensus-constrained problem; it is ours, not the paper's,
and is there to show what acceleration buys (its gradients per decade grow as kappa, DADAO's as sqrt(kappa)).

>>> trace = dadao_events(3, [(0, 1), (1, 2)], t_max=2.0, edge_rates=1.0, seed=0)
>>> trace == EventTrace.from_json(trace.to_json())
True
"""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from decentral import checks

GRAD, GOSSIP = 0, 1


class DadaoConstants(NamedTuple):
  """The ODE rates and jump sizes of the official code (see the module docstring)."""

  nu: float
  alpha: float
  alpha_tilde: float
  eta: float
  theta: float
  beta: float
  beta_tilde: float
  delta: float
  delta_tilde: float
  gamma: float
  gamma_tilde: float


class DadaoState(NamedTuple):
  """Per-node variables, each of shape (n, d), and each node's last event time (n,)."""

  x: jax.Array
  x_tilde: jax.Array
  y: jax.Array
  y_tilde: jax.Array
  z: jax.Array
  z_tilde: jax.Array
  t_last: jax.Array


@dataclasses.dataclass(frozen=True)
class EventTrace:
  """Time-ordered events: ``kinds[k]`` is GRAD (node ``i[k]``) or GOSSIP (edge ``(i[k], j[k])``) at ``times[k]``."""

  num_nodes: int
  times: tuple[float, ...]
  kinds: tuple[int, ...]
  i: tuple[int, ...]
  j: tuple[int, ...]

  def counts(self) -> dict[str, int]:
    """The number of gradient and communication events."""
    grads = sum(1 for k in self.kinds if k == GRAD)
    return {'gradients': grads, 'communications': len(self.kinds) - grads}

  def to_json(self) -> str:
    return json.dumps(dataclasses.asdict(self))

  @classmethod
  def from_json(cls, text: str) -> 'EventTrace':
    d = json.loads(text)
    return cls(int(d['num_nodes']), tuple(map(float, d['times'])), tuple(map(int, d['kinds'])),
               tuple(map(int, d['i'])), tuple(map(int, d['j'])))


def laplacian(num_nodes: int, edges: Sequence[tuple[int, int]], edge_rates: float | Sequence[float]) -> np.ndarray:
  """Lambda = sum_ij lambda_ij (e_i - e_j)(e_i - e_j)^T, the rate-weighted Laplacian of the gossip clocks."""
  rates = np.broadcast_to(np.asarray(edge_rates, np.float64), (len(edges),))
  lap = np.zeros((num_nodes, num_nodes))
  for (a, b), r in zip(edges, rates):
    lap[a, a] += r
    lap[b, b] += r
    lap[a, b] -= r
    lap[b, a] -= r
  return lap


def graph_constants(num_nodes: int, edges, edge_rates) -> tuple[float, float]:
  """(chi1*, chi2*): 1 / the smallest positive eigenvalue of Lambda, and the maximal edge resistance
  (1/2)(e_i - e_j)^T Lambda^+ (e_i - e_j) (the official code's 1/2 convention)."""
  lap = laplacian(num_nodes, edges, edge_rates)
  eig = np.linalg.eigvalsh(lap)
  if eig[1] <= 1e-12 * max(eig[-1], 1.0):
    raise ValueError('dadao: the gossip graph must be connected (with positive edge rates)')
  pinv = np.linalg.pinv(lap)
  chi2 = max(0.5 * (pinv[a, a] + pinv[b, b] - 2 * pinv[a, b]) for a, b in edges)
  return float(1.0 / eig[1]), float(chi2)


def minimal_edge_rate(num_nodes: int, edges) -> float:
  """The uniform per-edge rate r with chi1* chi2* = 1/2 (both scale as 1/r): r = sqrt(2 chi1 chi2) at rate 1."""
  chi1, chi2 = graph_constants(num_nodes, edges, 1.0)
  return float(np.sqrt(2.0 * chi1 * chi2))


def dadao_constants(mu: float, L: float, chi1_star: float) -> DadaoConstants:
  """The official code's constants (``DADAO_optimizer.initialize``), nu = mu / 2."""
  checks.positive_finite(mu, 'dadao_constants: mu')
  checks.positive_finite(L, 'dadao_constants: L')
  checks.positive_finite(chi1_star, 'dadao_constants: chi1_star')
  if mu > L:
    raise ValueError(f'dadao_constants: mu must be <= L, got mu={mu!r}, L={L!r}')
  nu = mu / 2
  s = np.sqrt(nu / L)
  return DadaoConstants(nu=nu, alpha=s / 4, alpha_tilde=s / 8, eta=s / 8, theta=0.5 / s, beta=0.5,
                        beta_tilde=2 * chi1_star / s, delta=s / 4, delta_tilde=1.0, gamma=1 / (4 * L),
                        gamma_tilde=1 / (4 * np.sqrt(L * nu)))


def ode_matrix(c: DadaoConstants) -> np.ndarray:
  """The 6 x 6 generator M of the between-event ODE on (x, x~, y, y~, z, z~): d(vars)/dt = M vars."""
  m = np.zeros((6, 6))
  m[0, 0], m[0, 1] = -c.eta, c.eta
  m[1, 0], m[1, 1] = c.eta, -c.eta
  m[2, 2], m[2, 3] = -c.alpha, c.alpha
  m[3, 1], m[3, 2], m[3, 4] = -c.theta * c.nu, -c.theta, -c.theta
  m[4, 4], m[4, 5] = -c.alpha, c.alpha
  m[5, 4], m[5, 5] = c.alpha_tilde, -c.alpha_tilde
  return m


def dadao_events(num_nodes: int, edges: Sequence[tuple[int, int]], *, t_max: float, grad_rate: float = 1.0,
                  edge_rates: float | Sequence[float] | None = None, seed: int = 0) -> EventTrace:
  """Independent Poisson clocks, one per node (rate ``grad_rate``) and one per edge (``edge_rates``; None:
  :func:`minimal_edge_rate`), merged in time order up to ``t_max``. Each clock has its own random stream, so a
  trace is a pure function of the arguments."""
  checks.positive_int(num_nodes, 'dadao_events: num_nodes')
  checks.positive_finite(t_max, 'dadao_events: t_max')
  checks.positive_finite(grad_rate, 'dadao_events: grad_rate')
  edges = [(int(a), int(b)) for a, b in edges]
  if any(not (0 <= a < num_nodes and 0 <= b < num_nodes and a != b) for a, b in edges):
    raise ValueError(f'dadao_events: edges must join two distinct nodes in [0, {num_nodes}), got {edges!r}')
  if edge_rates is None:
    edge_rates = minimal_edge_rate(num_nodes, edges)
  rates = np.broadcast_to(np.asarray(edge_rates, np.float64), (len(edges),))
  if np.any(~np.isfinite(rates)) or np.any(rates <= 0):
    raise ValueError(f'dadao_events: edge_rates must be positive, got {edge_rates!r}')
  events = []
  clocks = [(GRAD, grad_rate, (n, -1)) for n in range(num_nodes)] + [
      (GOSSIP, float(r), e) for r, e in zip(rates, edges)]
  for stream, (kind, rate, (a, b)) in enumerate(clocks):
    rng = np.random.default_rng([seed, stream])
    t = rng.exponential(1.0 / rate)
    while t < t_max:
      events.append((float(t), kind, a, b))
      t += rng.exponential(1.0 / rate)
  events.sort()
  return EventTrace(num_nodes, tuple(e[0] for e in events), tuple(e[1] for e in events),
                    tuple(e[2] for e in events), tuple(e[3] for e in events))


def dadao_init(x0: jax.Array) -> DadaoState:
  """x = x0 (shape (n, d)), every other variable 0, all clocks at time 0 (as the official code)."""
  zeros = jnp.zeros_like(x0)
  return DadaoState(x0, zeros, zeros, zeros, zeros, zeros, jnp.zeros(x0.shape[0], x0.dtype))


def flow_matrix(generator: jax.Array, dt) -> jax.Array:
  """expm(generator * dt) by scaling and squaring: the degree-18 Taylor polynomial of A / 2^s (||A / 2^s||_1
  <= 1/2, truncation error below 1e-23), squared s times. Exact to float64 rounding like
  ``jax.scipy.linalg.expm``, several times cheaper on a 6 x 6 matrix (one event's cost is dominated by it)."""
  a = generator * dt
  norm = jnp.max(jnp.sum(jnp.abs(a), axis=0))
  s = jnp.maximum(0, jnp.ceil(jnp.log2(jnp.maximum(norm, 1e-30))) + 1).astype(jnp.int32)
  a = a / (2.0 ** s).astype(a.dtype)
  eye = jnp.eye(a.shape[0], dtype=a.dtype)
  e = eye
  for k in range(18, 0, -1):   # Horner: I + A/1 (I + A/2 (I + ... ))
    e = eye + (a @ e) / k
  return jax.lax.fori_loop(0, s, lambda _, m: m @ m, e)


def _flow(state: DadaoState, node, t, generator):
  """Integrates node's ODE from its last event to t (exactly: the matrix exponential of the generator)."""
  stack = jnp.stack([v[node] for v in state[:6]])
  moved = flow_matrix(generator, t - state.t_last[node]) @ stack
  fields = [v.at[node].set(moved[k]) for k, v in enumerate(state[:6])]
  return DadaoState(*fields, state.t_last.at[node].set(t))


@functools.partial(jax.jit, static_argnames='grad_fn')
def grad_step(state: DadaoState, i, t, c: DadaoConstants, generator, grad_fn) -> DadaoState:
  """Node i's gradient event at time t: its ODE flow to t, then the jump (``grad_fn(x_i, i)`` = grad f_i(x_i))."""
  state = _flow(state, i, t, generator)
  x, yt = state.x[i], state.y_tilde[i]
  g = grad_fn(x, i) - c.nu * x - yt
  return state._replace(x=state.x.at[i].add(-c.gamma * g), x_tilde=state.x_tilde.at[i].add(-c.gamma_tilde * g),
                        y_tilde=state.y_tilde.at[i].add((c.delta + c.delta_tilde) * g))


@jax.jit
def gossip_step(state: DadaoState, i, j, t, c: DadaoConstants, generator) -> DadaoState:
  """Edge (i, j)'s gossip event at time t: both nodes' flows to t, then the exchange of y + z."""
  state = _flow(_flow(state, i, t, generator), j, t, generator)
  m = (state.y[i] + state.z[i]) - (state.y[j] + state.z[j])
  z = state.z.at[i].add(-c.beta * m).at[j].add(c.beta * m)
  z_tilde = state.z_tilde.at[i].add(-c.beta_tilde * m).at[j].add(c.beta_tilde * m)
  return state._replace(z=z, z_tilde=z_tilde)


def _event_arrays(trace: EventTrace, dtype):
  return (jnp.asarray(np.asarray(trace.times), dtype), jnp.asarray(np.asarray(trace.kinds, np.int32)),
          jnp.asarray(np.asarray(trace.i, np.int32)), jnp.asarray(np.maximum(np.asarray(trace.j, np.int32), 0)))


def _prepare(trace: EventTrace, x0: jax.Array, constants: DadaoConstants, name: str):
  if x0.ndim != 2 or x0.shape[0] != trace.num_nodes:
    raise ValueError(f'{name}: x0 must have shape ({trace.num_nodes}, d), got {x0.shape}')
  generator = jnp.asarray(ode_matrix(constants), x0.dtype)
  c = DadaoConstants(*(jnp.asarray(v, x0.dtype) for v in constants))   # traced: one compilation for all constants
  return dadao_init(x0), generator, c


@functools.partial(jax.jit, static_argnames=('grad_fn', 'monitor'))
def _scan(state, events, c, generator, grad_fn, monitor):
  def body(state, event):
    t, kind, i, j = event
    state = jax.lax.cond(kind == GRAD, lambda s: grad_step(s, i, t, c, generator, grad_fn),
                         lambda s: gossip_step(s, i, j, t, c, generator), state)
    return state, (monitor(state) if monitor is not None else None)
  return jax.lax.scan(body, state, events)


def dadao_run(trace: EventTrace, x0: jax.Array, grad_fn, constants: DadaoConstants, *,
              monitor: Callable[[DadaoState], jax.Array] | None = None) -> tuple[DadaoState, jax.Array | None]:
  """Replays ``trace`` from x0 (shape (n, d)) in one compiled ``lax.scan`` over the events, each event the same
  update as :func:`grad_step` / :func:`gossip_step` (the fast path; :func:`dadao_replay` is the host loop).

  Args:
    trace: the events (:func:`dadao_events`).
    x0: initial x, one row per node (all other variables start at 0).
    grad_fn: ``grad_fn(x_i, i)``, grad f_i at x_i (i a traced int); pass the same function object across runs to
      reuse the compilation.
    constants: :func:`dadao_constants`.
    monitor: a jittable ``monitor(state)`` recorded after every event (e.g. the distance to the optimum).

  Returns:
    (the final state, the monitor's values per event or None).
  """
  state, generator, c = _prepare(trace, x0, constants, 'dadao_run')
  if not trace.times:
    return state, None
  return _scan(state, _event_arrays(trace, x0.dtype), c, generator, grad_fn, monitor)


def dadao_replay(trace: EventTrace, x0: jax.Array, grad_fn, constants: DadaoConstants, *,
                 on_event: Callable[[int, DadaoState], None] | None = None) -> DadaoState:
  """Replays ``trace`` from x0 (shape (n, d)): a host loop over events, each a jitted update (:func:`grad_step`,
  :func:`gossip_step`); ``on_event(k, state)`` is called after event k. Slower than :func:`dadao_run` (one
  dispatch per event) but any host code can run between events."""
  state, generator, c = _prepare(trace, x0, constants, 'dadao_replay')
  times, kinds, nodes_i, nodes_j = _event_arrays(trace, x0.dtype)
  for k in range(len(trace.times)):
    if trace.kinds[k] == GRAD:
      state = grad_step(state, nodes_i[k], times[k], c, generator, grad_fn)
    else:
      state = gossip_step(state, nodes_i[k], nodes_j[k], times[k], c, generator)
    if on_event is not None:
      on_event(k, state)
  return state


@functools.partial(jax.jit, static_argnames=('grad_fn', 'monitor'))
def _primal_dual_scan(x0, events, step, dual_step, grad_fn, monitor):
  def body(carry, event):
    _, kind, i, j = event

    def gradient(c):
      x, y = c
      return x.at[i].add(-step * (grad_fn(x[i], i) + y[i])), y

    def gossip(c):
      x, y = c
      m = dual_step * (x[i] - x[j])
      return x, y.at[i].add(m).at[j].add(-m)

    carry = jax.lax.cond(kind == GRAD, gradient, gossip, carry)
    return carry, (monitor(carry[0]) if monitor is not None else None)

  return jax.lax.scan(body, (x0, jnp.zeros_like(x0)), events)


def primal_dual_run(trace: EventTrace, x0: jax.Array, grad_fn, *, step: float, dual_step: float,
                    monitor: Callable[[jax.Array], jax.Array] | None = None
                    ) -> tuple[tuple[jax.Array, jax.Array], jax.Array | None]:
  r"""The non-accelerated baseline on DADAO's clocks: the asynchronous primal-dual gradient method (Arrow-Hurwicz)
  on :math:`\min \sum_i f_i(x_i)` subject to :math:`x_i = x_j` on every edge, replayed along ``trace``.

  Node i holds :math:`x_i` and :math:`y_i = \sum_{j \sim i} \pm\lambda_{ij}` (its share of the edge duals, 0 at
  the start, so :math:`\sum_i y_i = 0` always). At a gradient event of node i, and at a gossip event of edge
  (i, j):

  .. math:: x_i \leftarrow x_i - \gamma\,(\nabla f_i(x_i) + y_i), \qquad
     y_i \leftarrow y_i + \beta (x_i - x_j), \quad y_j \leftarrow y_j - \beta (x_i - x_j).

  Its fixed points are the consensual optimum (:math:`\nabla f_i(x^\star) = -y_i`, :math:`\sum_i y_i = 0`). No
  momentum and no acceleration: for quadratics its linear rate per unit time is at best of order
  :math:`\gamma\mu` (:math:`\mu / L` with :math:`\gamma = 1/L`), against DADAO's :math:`\sqrt{\mu / L}`.

  Args:
    trace: the events (:func:`dadao_events`).
    x0: initial x, shape (n, d); the duals start at 0.
    grad_fn: ``grad_fn(x_i, i)``.
    step: gamma (e.g. 1/L).
    dual_step: beta, the dual step per gossip event.
    monitor: a jittable ``monitor(x)`` recorded after every event.

  Returns:
    ((x, y) at the end, the monitor's values per event or None).
  """
  checks.positive_finite(step, 'primal_dual_run: step')
  checks.positive_finite(dual_step, 'primal_dual_run: dual_step')
  if x0.ndim != 2 or x0.shape[0] != trace.num_nodes:
    raise ValueError(f'primal_dual_run: x0 must have shape ({trace.num_nodes}, d), got {x0.shape}')
  if not trace.times:
    return (x0, jnp.zeros_like(x0)), None
  return _primal_dual_scan(x0, _event_arrays(trace, x0.dtype), jnp.asarray(step, x0.dtype),
                           jnp.asarray(dual_step, x0.dtype), grad_fn, monitor)
