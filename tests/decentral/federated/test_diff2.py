"""DIFF2 (arXiv 2302.03884): three rounds by hand (restart, difference, restart), gradient descent exactly when no
clip binds and no noise is added, the averaged noise variance (sigma C)^2 / (b^2 P) measured under vmap and
shard_map, and the privacy of the rounds composed through dp_accounting. vmap = shard_map = pmap with noise is
checked by the worker-axis conformance suite (the registered 'diff2' adds noise)."""


import dp_accounting
import jax.numpy as jnp
import numpy as np
import pytest
from dp_accounting import rdp

import decentral
from decentral import axis

P, B, D = 4, 3, 2


def _data(seed=0):
  rng = np.random.default_rng(seed)
  return rng.standard_normal((P, B, D)) * 2.0, rng.uniform(0.5, 2.0, (P, B))  # targets a_pi, curvatures s_pi


def _grads(x, a, s):
  """Per-example gradients of s_i / 2 |x - a_i|^2 at x (one worker)."""
  return s[:, None] * (x[None] - a)


def _run(tx, a, s, rounds, backend='vmap', x0=None):
  def go(x, a, s):
    state, xs = tx.init(x), []
    for _ in range(rounds):
      u, state = tx.update(_grads(x, a, s), state, x, per_example_grads_fn=lambda y: _grads(y, a, s))
      x = x + u
      xs.append(x)
    return jnp.stack(xs)

  x0 = jnp.zeros((P, D)) if x0 is None else x0
  return np.asarray(axis.run(go, P, backend=backend)(x0, jnp.asarray(a), jnp.asarray(s)))


def _clip(v, c):
  n = np.linalg.norm(v)
  return v * min(1.0, c / n) if n > 0 else v


def test_three_rounds_by_hand(x64):
  a, s = _data()
  lr, c1, c2 = 0.3, 1.5, 0.2
  tx = decentral.diff2(lr, restart_every=2, l2_norm_clip=c1, diff_clip=c2, noise_multiplier=0.0,
                       diff_noise_multiplier=0.0)
  got = _run(tx, a, s, 3)
  x, x_prev, v, want = np.zeros(D), None, None, []
  for r in range(3):
    if r % 2 == 0:
      v = np.mean([np.mean([_clip(g, c1) for g in _grads(x, a[p], s[p])], 0) for p in range(P)], 0)
    else:
      v = v + np.mean([np.mean([_clip(g, c2) for g in _grads(x, a[p], s[p]) - _grads(x_prev, a[p], s[p])], 0)
                       for p in range(P)], 0)
    x_prev, x = x, x - lr * v
    want.append(x)
  for p in range(P):  # every worker holds the same iterate
    np.testing.assert_allclose(got[p], np.stack(want), rtol=1e-12)
  # the difference clip bound in round 1 (otherwise the test would not distinguish clip(diff) from diff of clips)
  diffs = _grads(want[0], a[0], s[0]) - _grads(np.zeros(D), a[0], s[0])
  assert np.linalg.norm(diffs, axis=1).max() > c2


def test_without_binding_clips_or_noise_it_is_gradient_descent(x64):
  """v^r telescopes to the mean gradient at x^r when no clip binds: the iterates are GD's."""
  a, s = _data(1)
  lr = 0.2
  tx = decentral.diff2(lr, restart_every=3, l2_norm_clip=1e6, diff_clip=1e6, noise_multiplier=0.0,
                       diff_noise_multiplier=0.0)
  got = _run(tx, a, s, 4)
  x, want = np.zeros(D), []
  for _ in range(4):
    x = x - lr * np.mean([_grads(x, a[p], s[p]).mean(0) for p in range(P)], 0)
    want.append(x)
  np.testing.assert_allclose(got[0], np.stack(want), rtol=1e-10)


@pytest.mark.parametrize('backend', ['vmap', 'shard_map'])
def test_averaged_noise_has_the_calibrated_variance(backend):
  """Every worker adds its own N(0, (sigma C)^2) before the average: the average has (sigma C)^2 / (b^2 P)."""
  n, b, d, sigma, c = 8, 2, 4096, 1.5, 0.6
  tx = decentral.diff2(1.0, restart_every=1, l2_norm_clip=c, diff_clip=c, noise_multiplier=sigma,
                       diff_noise_multiplier=sigma, seed=4)

  def go(x):
    zero = lambda y: jnp.zeros((b, d))
    u, _ = tx.update(zero(x), tx.init(x), x, per_example_grads_fn=zero)
    return u

  u = np.asarray(axis.run(go, n, backend=backend)(jnp.zeros((n, d))), np.float64)
  np.testing.assert_array_equal(u, np.broadcast_to(u[:1], u.shape))
  np.testing.assert_allclose(np.mean(u[0] ** 2), (sigma * c) ** 2 / (b ** 2 * n), rtol=0.07)


def test_epsilon_composes_restart_and_difference_rounds():
  sigma1, sigma2, rounds, period, delta = 2.0, 3.0, 20, 6, 1e-5  # 4 restarts, 16 difference rounds
  acc = rdp.RdpAccountant()
  acc.compose(dp_accounting.GaussianDpEvent(sigma1), 4)
  acc.compose(dp_accounting.GaussianDpEvent(sigma2), 16)
  assert decentral.diff2_epsilon(sigma1, sigma2, rounds, period, delta) == pytest.approx(acc.get_epsilon(delta))
  # T = 1 is DP-GD: every round a restart
  acc = rdp.RdpAccountant()
  acc.compose(dp_accounting.GaussianDpEvent(sigma1), rounds)
  assert decentral.diff2_epsilon(sigma1, sigma2, rounds, 1, delta) == pytest.approx(acc.get_epsilon(delta))
  with pytest.raises(ValueError, match='restart_every'):
    decentral.diff2(0.1, restart_every=0, l2_norm_clip=1.0, diff_clip=1.0, noise_multiplier=1.0,
                    diff_noise_multiplier=1.0)
