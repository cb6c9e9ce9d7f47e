"""DiceSGD (arXiv 2311.14632, Algorithm 1): the first two steps by hand, with noise from the documented key, the
official code's error update against the paper's (equal while ||e|| <= 2 C2, different beyond), and the paper's
claim: with a tiny clip DiceSGD reaches the unclipped optimum where clipped SGD stays biased."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optim
from optim.trees import gaussian_like


def _clip(x, c):
  n = np.linalg.norm(x)
  return x * min(1.0, c / n) if n > 0 else x


def _rows(seed, b=4, d=3, scale=2.0):
  return np.random.default_rng(seed).standard_normal((b, d)) * scale


def test_first_two_steps_by_hand(x64):
  c1, c2, sigma, seed, b = 0.5, 0.8, 0.7, 3, 4
  g0, g1 = _rows(0), _rows(1)
  tx = optim.dice_sgd_aggregate(c1, c2, sigma, seed)
  step = jax.jit(tx.update)
  state = tx.init(jnp.zeros(3))
  out0, state = step(jnp.asarray(g0), state)
  out1, state = step(jnp.asarray(g1), state)
  std = sigma * np.sqrt(c1 ** 2 + 2 * c1 * c2) / b
  z = [np.asarray(gaussian_like(jax.random.fold_in(jax.random.key(seed), t), jnp.zeros(3))) for t in (0, 1)]
  e = np.zeros(3)
  for g, out, zt in ((g0, out0, z[0]), (g1, out1, z[1])):
    v = np.mean([_clip(r, c1) for r in g], 0) + _clip(e, c2)
    np.testing.assert_allclose(out, v + std * zt, rtol=1e-12)
    e = e + g.mean(0) - v
  assert np.linalg.norm(e) > c2  # the feedback clip was active on the second step
  np.testing.assert_allclose(state.error, e, rtol=1e-12)


def test_code_convention_differs_only_beyond_twice_c2(x64):
  c1, c2 = 0.5, 1.0
  g = jnp.asarray(_rows(2))
  txs = {c: optim.dice_sgd_aggregate(c1, c2, 0.0, convention=c) for c in ('paper', 'code')}
  after = {c: jax.jit(lambda e, tx=tx: tx.update(g, tx.init(jnp.zeros(3))._replace(error=e))[1].error)
           for c, tx in txs.items()}
  diff = np.asarray(g).mean(0) - np.mean([_clip(r, c1) for r in np.asarray(g)], 0)
  for norm_over_c2 in (0.5, 1.5, 3.0):
    e = np.array([1.0, 2.0, -2.0]) / 3.0 * norm_over_c2 * c2
    paper, code = (np.asarray(after[c](jnp.asarray(e))) for c in ('paper', 'code'))
    np.testing.assert_allclose(paper, e - _clip(e, c2) + diff, rtol=1e-12)
    a = c2 / (np.linalg.norm(e) + 1e-6)
    np.testing.assert_allclose(code, e * min(a, 1 - min(a, 1)) + diff, rtol=1e-12)
    if norm_over_c2 <= 2:
      np.testing.assert_allclose(code, paper, rtol=1e-5, atol=1e-6)
    else:  # the code keeps clip(e) (norm C2) where the paper keeps e - clip(e) (norm ||e|| - C2)
      np.testing.assert_allclose(np.linalg.norm(code - diff), c2, rtol=1e-5)
      np.testing.assert_allclose(np.linalg.norm(paper - diff), np.linalg.norm(e) - c2, rtol=1e-9)


def test_removes_the_clipping_bias(x64):
  """Full-batch least squares, per-example clip far below the gradients, no noise: DiceSGD reaches the optimum,
  clipped SGD (DP-SGD's update) stalls at a biased point."""
  rng = np.random.default_rng(0)
  a = rng.standard_normal((12, 4))
  y = a @ rng.standard_normal(4) + 3.0 * rng.standard_normal(12)
  w_star = np.linalg.lstsq(a, y, rcond=None)[0]
  a, y = jnp.asarray(a), jnp.asarray(y)

  def run(tx, steps=1500):
    def body(carry, _):
      w, s = carry
      per_example = (a @ w - y)[:, None] * a
      u, s = tx.update(per_example, s, w)
      return (w + u, s), None
    (w, _), _ = jax.lax.scan(body, (jnp.zeros(4), tx.init(jnp.zeros(4))), None, length=steps)
    return np.asarray(w)

  c1 = 0.05
  dice = run(optim.dice_sgd(0.5, c1, c1, 0.0))
  clipped = run(optim.dp_sgd(0.5, c1, 0.0))
  assert np.linalg.norm(dice - w_star) < 1e-3 * np.linalg.norm(w_star)
  assert np.linalg.norm(clipped - w_star) > 0.05 * np.linalg.norm(w_star)


def test_adam_variant_and_bad_arguments():
  tx = optax.chain(optim.dice_sgd_aggregate(1.0, 1.0, 0.0), optax.adam(1e-2))
  u, _ = jax.jit(tx.update)(jnp.ones((2, 3)), tx.init(jnp.zeros(3)), jnp.zeros(3))
  assert u.shape == (3,)
  with pytest.raises(ValueError, match='error_clip'):
    optim.dice_sgd_aggregate(1.0, 0.5, 1.0)
  with pytest.raises(ValueError, match='convention'):
    optim.dice_sgd_aggregate(1.0, 1.0, 1.0, convention='fastdp')
  bad = optim.dice_sgd_aggregate(1.0, 1.0, 1.0)
  with pytest.raises(ValueError, match='shape'):
    jax.eval_shape(bad.update, jnp.ones((2, 4)), bad.init(jnp.zeros(3)))
