"""EDiT's pseudo-gradient penalty (the EWMA z-test, norm weights, clipping) and A-EDiT's time-triggered syncs."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from decentral import axis, sim
from decentral import local_sgd as ls


class _AtorchEWMA:
  """atorch's ``OnlineDynamicEWMA`` written out in Python floats (the reference of the z-test)."""

  def __init__(self, alpha, warmup, threshold):
    self.alpha, self.warmup, self.threshold = alpha, warmup, threshold
    self.mean, self.m2, self.count, self.window = 0.0, 0.0, 0, []

  def z(self, v):
    std = math.sqrt(self.m2) if self.count >= 2 else 0.0
    return 0.0 if std == 0 or self.count < self.warmup else (v - self.mean) / std

  def update(self, v):
    self.count += 1
    d = v - self.mean
    self.mean += self.alpha * d
    self.m2 = (1 - self.alpha) * (self.m2 + self.alpha * d * (v - self.mean))
    self.window = (self.window + [self.z(v)])[-self.warmup:]

  def is_outlier(self, v):
    if self.count < self.warmup:
      return False
    return self.z(v) > self.threshold * max(1.0, float(np.std(self.window, ddof=1)))


def test_ewma_detector_matches_atorch_by_hand():
  values = [1.0, 1.2, 0.9, 1.1, 1.05, 0.95, 1.15, 1.0, 9.0, 1.1]
  ref = _AtorchEWMA(0.3, 4, 3.0)
  st = ls.ewma_init(1, 4)
  for v in values:
    flagged = bool(ls.ewma_is_outlier(st, jnp.array([v]), warmup=4, threshold=3.0)[0])
    assert flagged == ref.is_outlier(v)
    if not flagged:  # atorch's DDP averager leaves anomalies out of the statistics
      ref.update(v)
      st = ls.ewma_update(st, jnp.array([v]), alpha=0.3, warmup=4)
    np.testing.assert_allclose([st.mean[0], st.m2[0]], [ref.mean, ref.m2], rtol=1e-5)
  assert ref.count == len(values) - 1  # 9.0 was flagged


def _edit_run(tx, grads):
  """n workers, H = 1: per step t worker i's gradient is grads[t, i]; returns per-step anchors and states."""
  def go(p, g):
    def body(carry, gt):
      p, s = carry
      u, s = tx.update(gt, s, p)
      return (optax.apply_updates(p, u), s), (s.anchor, s.reducer_state.count, s.comm.sent)
    return jax.lax.scan(body, (p, tx.init(p)), g)[1]
  n = grads.shape[1]
  return axis.run(go, n)(jnp.zeros((n, grads.shape[2])), jnp.swapaxes(grads, 0, 1))


def _grads_with_spike(n, steps, d, spiky, seed=0):
  rng = np.random.default_rng(seed)
  g = 1.0 + 0.05 * rng.standard_normal((steps, n, d))
  g[-1, spiky] *= 50.0
  return g.astype(np.float32)


def test_z_test_rejects_an_injected_anomalous_pseudo_gradient():
  n, steps, d, lr = 4, 8, 5, 0.1
  grads = _grads_with_spike(n, steps, d, spiky=[2])
  tx = ls.edit(optax.sgd(lr), optax.sgd(1.0), sync_every=1, temperature=None, clip=None, warmup=4,
               ewma_alpha=0.3)
  anchors, counts, sent = _edit_run(tx, grads)
  # Worker 2's detector skipped the spike, the others counted it.
  np.testing.assert_array_equal(counts[:, -1, 0], [steps, steps, steps - 1, steps])
  # The last outer step (outer SGD lr 1) moved by the mean with worker 2's pseudo-gradient zeroed.
  delta = lr * grads[-1]
  want = -(delta[[0, 1, 3]].sum(0) / n)
  np.testing.assert_allclose(anchors[0, -1] - anchors[0, -2], want, rtol=1e-5)
  assert sent[0, -1] == 4 * d  # the dense pseudo-gradient, no norms when T is None
  # Without the z-test the spike goes through.
  plain = ls.edit(optax.sgd(lr), optax.sgd(1.0), sync_every=1, temperature=None, clip=None, anomaly=False)
  anchors2, _, _ = _edit_run(plain, grads)
  np.testing.assert_allclose(anchors2[0, -1] - anchors2[0, -2], -delta.mean(0), rtol=1e-5)


def test_norm_weights_clipping_and_skip_when_everyone_is_rejected():
  n, steps, d, lr = 2, 7, 3, 0.1
  grads = _grads_with_spike(n, steps, d, spiky=[0, 1], seed=1)
  outer = ls.default_outer(momentum=ls.EDIT_OUTER_MOMENTUM)
  tx = ls.edit(optax.sgd(lr), outer, sync_every=1, temperature=2.0, clip=0.15, warmup=4, ewma_alpha=0.3)
  anchors, counts, sent = _edit_run(tx, grads)
  np.testing.assert_array_equal(anchors[:, -1], anchors[:, -2])  # both rejected: the layer skips its step
  assert sent[0, -1] == 4 * d + 4  # pseudo-gradient + one norm per leaf for the softmax
  # A step before: norm-weighted mean, clipped to 0.15, then Nesterov (0.7, 0.8).
  delta = lr * grads[:, :, :].astype(np.float64)
  m = np.zeros(d)
  anchor = np.zeros(d)
  for t in range(steps - 1):
    norms = np.linalg.norm(delta[t], axis=1)
    w = np.exp(-norms / 2.0) / np.exp(-norms / 2.0).sum()
    g = (w[:, None] * delta[t]).sum(0)
    g *= min(1.0, 0.15 / (np.linalg.norm(g) + 1e-6))
    m = g + 0.8 * m
    anchor = anchor - 0.7 * (g + 0.8 * m)
    np.testing.assert_allclose(anchors[0, t], anchor, rtol=1e-5)


def _linear_problem(g):
  """Worker w's loss is g_w . theta, so its gradient is the constant g_w whatever the batch."""
  return lambda p, batch: (jnp.vdot(batch, p), batch), lambda w, k: g[w]


def test_a_edit_step_weighted_sync_by_hand():
  g = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], np.float32)
  grad_fn, batch_fn = _linear_problem(g)
  times = sim.step_time_model(3, slowdown=[1.0, 2.0, 4.0])
  final, history = ls.run_a_edit(
      jnp.zeros(2), num_workers=3, inner=optax.sgd(0.1), grad_fn=grad_fn, batch_fn=batch_fn, step_time=times,
      sync_time=4.0, total_time=4.0, outer=optax.sgd(1.0), use_step_weight=True, temperature=None, clip=None,
      anomaly=False)
  # By t = 4 the workers finished 4, 2 and 1 steps: Delta_w = 0.1 k_w g_w, weights k_w / 7.
  k = np.array([4.0, 2.0, 1.0])
  want = -((k / 7)[:, None] * 0.1 * k[:, None] * g).sum(0)
  np.testing.assert_allclose(final, want, rtol=1e-6)
  assert [h['steps'] for h in history] == [[4, 2, 1]]
  assert history[0]['time'] == 4.0 and history[0]['bytes_per_worker'] == 8


def test_a_edit_skips_rounds_with_too_few_steps_and_trains():
  g = np.ones((2, 3), np.float32)
  grad_fn, batch_fn = _linear_problem(g)
  times = sim.step_time_model(2, slowdown=[1.0, 3.0], jitter=0.2, seed=1)
  _, none = ls.run_a_edit(jnp.zeros(3), num_workers=2, inner=optax.sgd(0.1), grad_fn=grad_fn,
                          batch_fn=batch_fn, step_time=times, sync_time=2.0, total_time=6.0, min_total_steps=100)
  assert none == []
  # A real (least-squares) problem: the loss of the global model goes down across syncs.
  rng = np.random.default_rng(0)
  a = rng.standard_normal((4, 16, 3)).astype(np.float32)
  b = a @ np.array([1.0, -2.0, 0.5], np.float32)

  def ls_grad(p, batch):
    xa, xb = batch
    return jax.value_and_grad(lambda q: jnp.mean((xa @ q - xb) ** 2))(p)

  final, hist = ls.run_a_edit(jnp.zeros(3), num_workers=4, inner=optax.sgd(0.05), grad_fn=ls_grad,
                              batch_fn=lambda w, k: (a[w], b[w]),
                              step_time=sim.step_time_model(4, slowdown=[1, 1, 2, 3], jitter=0.3),
                              sync_time=5.0, total_time=60.0, use_step_weight=True, warmup=3)
  assert len(hist) >= 6 and hist[-1]['loss'] < 0.1 * hist[0]['loss']
  full = lambda q: float(np.mean((a @ np.asarray(q) - b) ** 2))
  assert full(final) < 0.02 * full(np.zeros(3))


def test_bad_hyperparameters_are_rejected():
  with pytest.raises(ValueError, match='warmup'):
    ls.edit(optax.sgd(0.1), sync_every=2, warmup=1)
  with pytest.raises(ValueError, match='clip'):
    ls.edit(optax.sgd(0.1), sync_every=2, clip=-1.0)
  with pytest.raises(ValueError, match='ewma_alpha'):
    ls.edit(optax.sgd(0.1), sync_every=2, ewma_alpha=0.0)
  with pytest.raises(ValueError, match='period'):
    sim.run_time_triggered(2, sim.step_time_model(2), period=0.0, total_time=1.0,
                                 on_step=lambda *a: None, on_round=lambda *a: True)
  with pytest.raises(ValueError, match='slowdown'):
    sim.step_time_model(2, slowdown=[1.0, -1.0])
