"""FedSpeed (decentral/federated/fedspeed.py): two rounds against a numpy transcription of the paper's Algorithm 1,
the official code's parametrisation (lamb = 1 / lambda, raw-delta h, ESAM, mean of h over all clients) against the
paper's, and the ablations (no prox-term, no correction, no perturbation) against FedAvg and FedProx."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from decentral.federated import fedspeed

K, ETA = 3, 0.1
RNG = np.random.default_rng(0)
# Client i's loss on batch j: 0.5 (x - c_ij)^T H_i (x - c_ij); a different centre per step (stochastic batches).
H = [np.diag(RNG.uniform(0.5, 2.0, 3)) for _ in range(3)]
C = RNG.normal(size=(3, 4, K, 3))  # [client, round, step, dim]


def grad_np(i, x, c):
  return H[i] @ (x - c)


def grad_jax(x, batch):
  h, c = batch
  return h @ (x - c)


@functools.partial(jax.jit, static_argnames=('lam', 'alpha', 'rho', 'normalize', 'correct'))
def _round(x, g_hat, h, c, *, lam, alpha, rho, normalize, correct):
  batches = (jnp.broadcast_to(h, (K,) + h.shape), c)
  x_k = fedspeed.local_steps(grad_jax, optax.sgd(ETA), x, g_hat, batches, lam=lam, alpha=alpha, rho=rho,
                             normalize=normalize, correct=correct)
  upload, g_new = fedspeed.finish_client(x_k, x, g_hat, lam, correct=correct)
  return upload, g_new, x_k


def paper_round(x, g_hat, i, t, *, lam, alpha, rho):
  """Algorithm 1 of arXiv 2302.10429 for client i in round t: (x_hat, new g_hat, x_K)."""
  xk = x.copy()
  for k in range(K):
    g1 = grad_np(i, xk, C[i, t, k])
    g2 = grad_np(i, xk + rho * g1, C[i, t, k])
    g_tilde = (1 - alpha) * g1 + alpha * g2
    xk = xk - ETA * (g_tilde - g_hat + (xk - x) / lam)
  g_new = g_hat - (xk - x) / lam
  return xk - lam * g_new, g_new, xk


def code_round(w, h, i, t, *, lamb, rho):
  """FL-Simulator's client: ESAM gradient plus lamb (w - w_t + h_i); h_i += w_K - w_t afterwards."""
  wk = w.copy()
  for k in range(K):
    g = grad_np(i, wk, C[i, t, k])
    g_sam = grad_np(i, wk + rho * g / (np.linalg.norm(g) + 1e-7), C[i, t, k])
    wk = wk - ETA * (g_sam + lamb * (wk - w + h))
  return wk, h + (wk - w)


def ours_round(x, g_hat, i, t, *, lam, alpha, rho, normalize=False, correct=True):
  out = _round(jnp.asarray(x), jnp.asarray(g_hat), jnp.asarray(H[i]), jnp.asarray(C[i, t]), lam=lam, alpha=alpha,
               rho=rho, normalize=normalize, correct=correct)
  return tuple(np.asarray(o) for o in out)


def test_two_rounds_match_the_paper(x64):
  lam, alpha, rho = 0.5, 0.6, 0.05
  x, x_ours = np.zeros(3), np.zeros(3)
  g_hat, g_ours = np.zeros((3, 3)), np.zeros((3, 3))
  for t in range(2):  # the second round is the first where the correction acts on the local steps
    ups, ours = [], []
    for i in range(3):
      up, g_hat[i], _ = paper_round(x, g_hat[i], i, t, lam=lam, alpha=alpha, rho=rho)
      up_o, g_ours[i], _ = ours_round(x_ours, g_ours[i], i, t, lam=lam, alpha=alpha, rho=rho)
      ups.append(up)
      ours.append(up_o)
    x = np.mean(ups, axis=0)
    x_ours = np.asarray(fedspeed.server_average(jnp.mean(jnp.asarray(ours), axis=0)))
    np.testing.assert_allclose(x_ours, x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g_ours, g_hat, rtol=1e-12, atol=1e-12)
  assert np.linalg.norm(g_hat) > 1e-2  # the correction is really exercised


@pytest.mark.parametrize('participants', [(0, 1, 2), (0, 2)])
def test_code_parametrisation(x64, participants):
  """lamb = 1 / lambda, h = -lambda g_hat, ESAM = (normalize, alpha=1): the code's numbers; its server equals the
  paper's under full participation only."""
  lam, rho, n = 0.5, 0.05, 3
  w, h = np.zeros(3), np.zeros((n, 3))
  x, g_hat = np.zeros(3), np.zeros((n, 3))
  for t in range(2):
    wks, ups, xks = [], [], []
    for i in participants:
      wk, h[i] = code_round(w, h[i], i, t, lamb=1 / lam, rho=rho)
      wks.append(wk)
      up, g_hat[i], xk = ours_round(x, g_hat[i], i, t, lam=lam, alpha=1.0, rho=rho, normalize=True)
      ups.append(up)
      xks.append(xk)
      np.testing.assert_allclose(xk, wk, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(-lam * g_hat, h, rtol=1e-10, atol=1e-12)
    w = np.mean(wks, axis=0) + np.mean(h, axis=0)  # FL-Simulator's global_update
    x_code = fedspeed.server_average(None, server='code', mean_local=jnp.mean(jnp.asarray(xks), axis=0),
                                     correction_sum=jnp.sum(jnp.asarray(g_hat), axis=0), num_clients=n, lam=lam)
    np.testing.assert_allclose(x_code, w, rtol=1e-10, atol=1e-12)
    x_paper = np.mean(ups, axis=0)
    assert np.allclose(x_paper, w) == (len(participants) == n)
    x = w


def test_parts_off_is_fedavg_and_no_correction_is_fedprox(x64):
  x0 = np.array([0.3, -0.2, 1.0])
  up, g_new, _ = ours_round(x0, np.ones(3), 1, 0, lam=None, alpha=0.0, rho=0.5)
  xk = x0.copy()
  for k in range(K):
    xk = xk - ETA * grad_np(1, xk, C[1, 0, k])
  np.testing.assert_allclose(up, xk, rtol=1e-13)
  np.testing.assert_allclose(g_new, np.ones(3))  # untouched
  up, _, _ = ours_round(x0, np.ones(3), 1, 0, lam=0.25, alpha=0.0, rho=0.5, correct=False)
  xk = x0.copy()
  for k in range(K):
    xk = xk - ETA * (grad_np(1, xk, C[1, 0, k]) + (xk - x0) / 0.25)
  np.testing.assert_allclose(up, xk, rtol=1e-13)


def test_quasi_gradient_conventions():
  grad_fn = lambda x: 2.0 * x  # noqa: E731
  x = jnp.array([3.0, 4.0])
  np.testing.assert_allclose(fedspeed.quasi_gradient(grad_fn, x, alpha=1.0, rho=0.5, normalize=True),
                             2.0 * (x + 0.5 * x / 5.0), rtol=1e-6)
  np.testing.assert_allclose(fedspeed.quasi_gradient(grad_fn, x, alpha=0.25, rho=0.5),
                             0.75 * 2 * x + 0.25 * 2 * (x + 0.5 * 2 * x), rtol=1e-6)


def test_masked_steps_and_errors():
  g = lambda x, c: x - c  # noqa: E731
  batches = jnp.arange(3.0)[:, None] * jnp.ones((3, 2))
  x_k = fedspeed.local_steps(g, optax.sgd(1.0), jnp.zeros(2), jnp.zeros(2), batches, lam=None, alpha=0.0, rho=0.0,
                             mask=jnp.array([True, False, False]))
  np.testing.assert_allclose(x_k, jnp.zeros(2))  # x - (x - 0) = 0 after step 0; steps 1, 2 skipped
  with pytest.raises(ValueError, match='prox_correction: lam'):
    fedspeed.prox_correction(-1.0)
  with pytest.raises(ValueError, match='quasi_gradient: alpha'):
    fedspeed.quasi_gradient(g, jnp.zeros(2), alpha=2.0, rho=0.1)
  with pytest.raises(ValueError, match="server='code' needs"):
    fedspeed.server_average(jnp.zeros(2), server='code')
  with pytest.raises(ValueError, match='needs params and anchor'):
    fedspeed.prox_correction(1.0).update(jnp.zeros(2), fedspeed.ProxCorrectionState())


# ---------------------------------------------------------------------------------------------- on the round engine

COUNTS = (3, 2, 4)
ENGINE_H = RNG.uniform(0.5, 2.0, (3, 4, 3))  # per example: a diagonal curvature and a centre
ENGINE_C = RNG.normal(size=(3, 4, 3))


def _engine(algorithm, backend='vmap', server_optimizer=None):
  from decentral.federated import partitions, rounds, sampling
  parts, start = [], 0
  for n in COUNTS:
    parts.append(np.arange(start, start + n))
    start += n
  data = partitions.pad({'h': ENGINE_H.reshape(-1, 3)[:12], 'c': ENGINE_C.reshape(-1, 3)[:12]}, parts)
  loss = lambda x, batch: 0.5 * jnp.sum(batch['h'] * (x - batch['c']) ** 2, axis=-1)  # noqa: E731
  return rounds.Federated(loss, data, local=rounds.Local(optax.sgd(ETA), steps=K), sampler=sampling.everyone(3),
                          algorithm=algorithm, backend=backend, server_optimizer=server_optimizer)


def _engine_oracle(rounds_, *, lam, alpha, rho):
  hs, cs = ENGINE_H.reshape(-1, 3)[:12], ENGINE_C.reshape(-1, 3)[:12]
  bounds = np.cumsum((0,) + COUNTS)
  full_grad = lambda i, x: np.mean(hs[bounds[i]:bounds[i + 1]] * (x - cs[bounds[i]:bounds[i + 1]]), axis=0)  # noqa
  x, g_hat = np.zeros(3), np.zeros((3, 3))
  for _ in range(rounds_):
    ups = []
    for i in range(3):
      y = x.copy()
      for _ in range(K):
        g1 = full_grad(i, y)
        g = (1 - alpha) * g1 + alpha * full_grad(i, y + rho * g1)
        y = y - ETA * (g - g_hat[i] + (y - x) / lam)
      g_hat[i] = g_hat[i] - (y - x) / lam
      ups.append(y - lam * g_hat[i])
    x = np.mean(ups, axis=0)  # unweighted, as the paper and the code
  return x, g_hat


def test_engine_two_rounds_match_the_paper(x64):
  """Full-batch local steps, clients of 3, 2 and 4 examples; the code's server (the mean of h over all clients,
  added after the server optimizer) equals the paper's under full participation, so one oracle checks both."""
  for server in ('paper', 'code'):
    fed = _engine(fedspeed.fedspeed_algorithm(0.5, alpha=0.6, rho=0.05, server=server))
    state = fed.init(jnp.zeros(3), jax.random.key(0))
    for _ in range(2):
      state, _ = fed.round(state)
    x, g_hat = _engine_oracle(2, lam=0.5, alpha=0.6, rho=0.05)
    # The engine's aggregation weights are float32 (1/3 to ~1e-8), the rest float64.
    np.testing.assert_allclose(state.params, x, rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(state.table, g_hat, rtol=1e-7, atol=1e-10)
