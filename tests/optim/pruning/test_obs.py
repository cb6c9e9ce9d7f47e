"""OBS pruning with M-FAC: scores and updates against the dense constrained quadratic, and the magnitude baseline."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from optim.pruning import magnitude_prune, obs_prune, obs_scores, static_fisher_inverse


def _problem(m=8, d=12, seed=0):
  rng = np.random.default_rng(seed)
  return rng.normal(size=d), rng.normal(size=(m, d)) * rng.uniform(0.1, 3.0, size=d)


def test_single_removal_is_the_constrained_minimum_of_the_quadratic(x64):
  w, g = _problem()
  damping = 1e-2
  fisher = damping * np.eye(12) + g.T @ g / g.shape[0]
  inv = np.linalg.inv(fisher)
  scores = np.asarray(obs_scores(jnp.asarray(w), static_fisher_inverse(jnp.asarray(g), damping)))
  np.testing.assert_allclose(scores, w ** 2 / (2 * np.diag(inv)), rtol=1e-9)
  q = int(np.argmin(scores))
  new_w, mask = obs_prune(jnp.asarray(w), jnp.asarray(g), jnp.ones(12, bool), 1, damping)
  # Dense KKT of min 1/2 dw^T F dw subject to w_q + dw_q = 0.
  kkt = np.block([[fisher, np.eye(12)[:, [q]]], [np.eye(12)[[q]], np.zeros((1, 1))]])
  dw = np.linalg.solve(kkt, np.concatenate([np.zeros(12), [-w[q]]]))[:12]
  np.testing.assert_allclose(new_w, w + dw, rtol=1e-9, atol=1e-12)
  assert not mask[q] and int(mask.sum()) == 11
  np.testing.assert_allclose(0.5 * dw @ fisher @ dw, scores[q], rtol=1e-9)  # the score is the loss increase
  # No other single removal is cheaper: each one's constrained minimum is its own score.
  assert scores[q] == scores.min()


def test_several_removals_sum_the_single_updates_over_the_alive_coordinates(x64):
  w, g = _problem(seed=3)
  damping = 1e-3
  mask = np.ones(12, bool)
  mask[[1, 5]] = False
  w[~mask] = 0.0
  alive = np.flatnonzero(mask)
  inv = np.linalg.inv(damping * np.eye(10) + g[:, alive].T @ g[:, alive] / g.shape[0])  # F on the alive part
  scores = w[alive] ** 2 / (2 * np.diag(inv))
  drop = np.argsort(scores)[:3]
  delta = np.zeros(10)
  delta[drop] = -w[alive][drop] / np.diag(inv)[drop]
  expect = np.zeros(12)
  expect[alive] = w[alive] + inv @ delta
  expect[alive[drop]] = 0.0
  new_w, new_mask = obs_prune(jnp.asarray(w), jnp.asarray(g), jnp.asarray(mask), 3, damping)
  np.testing.assert_allclose(new_w, expect, rtol=1e-9, atol=1e-12)
  assert set(np.flatnonzero(~np.asarray(new_mask))) == {1, 5, *alive[drop]}


def test_obs_beats_magnitude_on_a_quadratic_with_uneven_curvature(x64):
  # Loss 1/2 (w - w0)^T F (w - w0) with F the damped empirical Fisher itself: the OBS model is exact here.
  w, g = _problem(m=40, d=30, seed=5)
  damping = 1e-3
  fisher = damping * np.eye(30) + g.T @ g / g.shape[0]
  loss = lambda v: 0.5 * (v - w) @ fisher @ (v - w)
  mask = jnp.ones(30, bool)
  w_obs, w_mag = jnp.asarray(w), jnp.asarray(w)
  m_obs = m_mag = mask
  for _ in range(4):  # 4 steps of 5, recomputing F each step (it is fixed here)
    w_obs, m_obs = obs_prune(w_obs, jnp.asarray(g), m_obs, 5, damping)
    w_mag, m_mag = magnitude_prune(w_mag, m_mag, 5)
  assert int(m_obs.sum()) == int(m_mag.sum()) == 10
  assert loss(np.asarray(w_obs)) < 0.5 * loss(np.asarray(w_mag))


def test_bad_input_is_named():
  with pytest.raises(ValueError, match='obs_prune: num_prune'):
    obs_prune(jnp.ones(3), jnp.ones((2, 3)), jnp.ones(3, bool), 4)
  with pytest.raises(ValueError, match='magnitude_prune: weights'):
    magnitude_prune(jnp.ones((3, 1)), jnp.ones(3, bool), 1)
