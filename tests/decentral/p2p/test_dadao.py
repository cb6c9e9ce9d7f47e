"""DADAO (arXiv 2208.00779): first events by hand, exact replay of a recorded trace, linear convergence; the
non-accelerated primal-dual baseline on the same clocks by hand."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from decentral.p2p import dadao as D


def _quadratics(n, d, seed, spread=(1.0, 10.0)):
  """f_i(x) = 1/2 (x - b_i)^T A_i (x - b_i), heterogeneous A_i and b_i; returns A, b, mu, L, x*."""
  rng = np.random.default_rng(seed)
  mats = []
  for _ in range(n):
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    mats.append(q @ np.diag(rng.uniform(*spread, d)) @ q.T)
  a, b = np.stack(mats), rng.normal(size=(n, d))
  mu = min(np.linalg.eigvalsh(m)[0] for m in a)
  lip = max(np.linalg.eigvalsh(m)[-1] for m in a)
  x_star = np.linalg.solve(a.sum(0), np.einsum('nij,nj->i', a, b))
  return a, b, mu, lip, x_star


def _grad_fn(a, b):
  a, b = jnp.asarray(a), jnp.asarray(b)
  return lambda x, i: a[i] @ (x - b[i])


def _numpy_dadao(trace, x0, a, b, c):
  """The paper's updates (official-code constants) in float64 numpy, event by event."""
  m = D.ode_matrix(c)
  v = np.zeros((6,) + x0.shape)   # (x, x~, y, y~, z, z~) per node
  v[0] = x0
  t_last = np.zeros(x0.shape[0])
  def flow(node, t):
    v[:, node] = scipy.linalg.expm(m * (t - t_last[node])) @ v[:, node]
    t_last[node] = t
  for t, kind, i, j in zip(trace.times, trace.kinds, trace.i, trace.j):
    if kind == D.GRAD:
      flow(i, t)
      g = a[i] @ (v[0, i] - b[i]) - c.nu * v[0, i] - v[3, i]
      v[0, i] -= c.gamma * g
      v[1, i] -= c.gamma_tilde * g
      v[3, i] += (c.delta + c.delta_tilde) * g
    else:
      flow(i, t)
      flow(j, t)
      msg = (v[2, i] + v[4, i]) - (v[2, j] + v[4, j])
      v[4, i] -= c.beta * msg
      v[5, i] -= c.beta_tilde * msg
      v[4, j] += c.beta * msg
      v[5, j] += c.beta_tilde * msg
  return v


def test_first_events_match_hand_computation(x64):
  a, b, mu, lip, _ = _quadratics(3, 2, seed=1)
  edges = [(0, 1), (1, 2)]
  chi1, chi2 = D.graph_constants(3, edges, 2.0)
  c = D.dadao_constants(mu, lip, chi1)
  G, S = D.GRAD, D.GOSSIP
  trace = D.EventTrace(3, (0.3, 0.7, 1.1, 1.6, 2.5, 4.0), (G, S, G, S, G, G), (0, 0, 1, 1, 2, 0),
                       (-1, 1, -1, 2, -1, -1))
  x0 = np.array([[1.0, -2.0], [0.5, 0.0], [-1.0, 3.0]])
  state, _ = D.dadao_run(trace, jnp.asarray(x0), _grad_fn(a, b), c)
  want = _numpy_dadao(trace, x0, a, b, c)
  for k, got in enumerate(state[:6]):
    np.testing.assert_allclose(np.asarray(got), want[k], rtol=1e-12, atol=1e-13)
  np.testing.assert_array_equal(np.asarray(state.t_last), [4.0, 1.6, 2.5])
  assert c.beta_tilde == pytest.approx(2 * chi1 * np.sqrt(2 * lip / mu))
  assert chi2 <= chi1


def test_flow_matrix_is_the_matrix_exponential(x64):
  m = D.ode_matrix(D.dadao_constants(0.3, 30.0, 5.0))
  flow = jax.jit(D.flow_matrix)
  for dt in (0.0, 1e-3, 0.7, 25.0, 400.0):
    np.testing.assert_allclose(np.asarray(flow(jnp.asarray(m), dt)), scipy.linalg.expm(m * dt),
                               rtol=1e-11, atol=1e-13)


def test_recorded_trace_replays_exactly(x64):
  n, d = 5, 3
  a, b, mu, lip, _ = _quadratics(n, d, seed=2)
  edges = [(i, (i + 1) % n) for i in range(n)]
  rate = D.minimal_edge_rate(n, edges)
  trace = D.dadao_events(n, edges, t_max=15.0, edge_rates=rate, seed=3)
  assert trace == D.dadao_events(n, edges, t_max=15.0, edge_rates=rate, seed=3)
  assert trace != D.dadao_events(n, edges, t_max=15.0, edge_rates=rate, seed=4)
  assert all(t0 <= t1 for t0, t1 in zip(trace.times, trace.times[1:]))
  c = D.dadao_constants(mu, lip, D.graph_constants(n, edges, rate)[0])
  grad, x0 = _grad_fn(a, b), jnp.ones((n, d))
  first, _ = D.dadao_run(trace, x0, grad, c)
  again, _ = D.dadao_run(D.EventTrace.from_json(trace.to_json()), x0, grad, c)
  for u, v in zip(first, again):
    np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
  short = D.EventTrace(n, trace.times[:12], trace.kinds[:12], trace.i[:12], trace.j[:12])
  assert set(short.kinds) == {D.GRAD, D.GOSSIP}
  host = D.dadao_replay(short, x0, grad, c)   # the host loop of jitted per-event updates, same numbers
  scanned, _ = D.dadao_run(short, x0, grad, c)
  np.testing.assert_allclose(np.asarray(host.x), np.asarray(scanned.x), rtol=1e-14, atol=1e-15)


def test_linear_convergence_at_the_accelerated_rate_order(x64):
  n, d, t_max = 8, 4, 300.0
  a, b, mu, lip, x_star = _quadratics(n, d, seed=0)
  edges = [(i, (i + 1) % n) for i in range(n)]   # ring
  rate = D.minimal_edge_rate(n, edges)            # chi1* chi2* = 1/2, the paper's sufficient rate
  chi1, chi2 = D.graph_constants(n, edges, rate)
  assert chi1 * chi2 == pytest.approx(0.5)
  trace = D.dadao_events(n, edges, t_max=t_max, edge_rates=rate, seed=0)
  counts = trace.counts()
  # Independent clocks: n t_max gradients and |E| rate t_max communications in expectation (5 sigma).
  for got, mean in ((counts['gradients'], n * t_max), (counts['communications'], len(edges) * rate * t_max)):
    assert abs(got - mean) < 5 * np.sqrt(mean)
  c = D.dadao_constants(mu, lip, chi1)
  error = lambda s: jnp.mean(jnp.sum((s.x - x_star) ** 2, axis=1))
  _, errors = D.dadao_run(trace, jnp.zeros((n, d)), _grad_fn(a, b), c, monitor=error)
  errors, times = np.asarray(errors), np.asarray(trace.times)
  late = times > t_max / 3
  slope = np.polyfit(times[late], np.log(errors[late]), 1)[0]
  ratio = -slope / np.sqrt(mu / lip)   # the paper: error ~ exp(-c t sqrt(mu / L)), c an absolute constant
  print(f'\nDADAO ring n={n}, kappa={lip / mu:.1f}: {counts}, log-error slope {slope:.4f}/unit time, '
        f'slope / sqrt(mu/L) = {ratio:.3f}, final error {errors[-1]:.2e} (initial {errors[0]:.2e})')
  assert errors[-1] < 1e-6 * errors[0]
  assert 0.03 < ratio < 3.0


def test_bad_inputs_raise():
  with pytest.raises(ValueError, match='mu'):
    D.dadao_constants(2.0, 1.0, 1.0)
  with pytest.raises(ValueError, match='edges'):
    D.dadao_events(3, [(0, 0)], t_max=1.0, edge_rates=1.0)
  with pytest.raises(ValueError, match='connected'):
    D.graph_constants(4, [(0, 1), (2, 3)], 1.0)


def test_primal_dual_baseline_first_events_by_hand_and_exact_convergence(x64):
  """The non-accelerated baseline: its events in numpy, the duals summing to zero, and convergence to the exact
  consensual optimum (not to a neighbourhood of it, as plain gossip with gradient steps would)."""
  n, d = 4, 3
  a, b, mu, lip, x_star = _quadratics(n, d, seed=2)
  edges = [(0, 1), (1, 2), (2, 3), (3, 0)]
  trace = D.dadao_events(n, edges, t_max=3.0, edge_rates=1.0, seed=4)
  step, dual = 1 / lip, 0.3
  x0 = np.random.default_rng(5).normal(size=(n, d))
  (x, y), _ = D.primal_dual_run(trace, jnp.asarray(x0), _grad_fn(a, b), step=step, dual_step=dual)
  hx, hy = x0.copy(), np.zeros((n, d))
  for kind, i, j in zip(trace.kinds, trace.i, trace.j):
    if kind == D.GRAD:
      hx[i] -= step * (a[i] @ (hx[i] - b[i]) + hy[i])
    else:
      m = dual * (hx[i] - hx[j])
      hy[i] += m
      hy[j] -= m
  assert set(trace.kinds) == {D.GRAD, D.GOSSIP}
  np.testing.assert_allclose(np.asarray(x), hx, rtol=1e-13, atol=1e-14)
  np.testing.assert_allclose(np.asarray(y), hy, rtol=1e-13, atol=1e-14)
  np.testing.assert_allclose(np.asarray(y).sum(0), 0.0, atol=1e-12)
  long = D.dadao_events(n, edges, t_max=400.0, edge_rates=1.0, seed=4)
  error = lambda x: jnp.sum((x - x_star) ** 2)
  _, errors = D.primal_dual_run(long, jnp.asarray(x0), _grad_fn(a, b), step=step, dual_step=dual, monitor=error)
  assert float(errors[-1]) < 1e-8 * float(error(jnp.asarray(x0)))
  with pytest.raises(ValueError, match='primal_dual_run: dual_step'):
    D.primal_dual_run(trace, jnp.asarray(x0), _grad_fn(a, b), step=step, dual_step=-1.0)
