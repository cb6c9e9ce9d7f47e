"""Iterate averages equal numpy's means of the iterates; EMA is the debiased geometric mean; state survives orbax."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

import optim


def _iterates(tx_avg, steps=12, seed=0):
  """Runs noisy SGD chained with an averaging transform; returns the iterates and the final state."""
  rng = np.random.default_rng(seed)
  params = {'w': jnp.asarray(rng.normal(size=(3, 2)), jnp.float32), 'b': jnp.asarray(rng.normal(size=3),
                                                                                     jnp.float32)}
  tx = optax.chain(optax.sgd(0.1), tx_avg)
  state = tx.init(params)
  history = []
  for _ in range(steps):
    grads = jax.tree.map(lambda x: jnp.asarray(rng.normal(size=x.shape), jnp.float32), params)
    updates, state = tx.update(grads, state, params)
    params = optax.apply_updates(params, updates)
    history.append(jax.tree.map(np.asarray, params))
  return history, state


@pytest.mark.parametrize('start, every', [(0, 1), (5, 1), (3, 4)])
def test_tail_average_and_swa_equal_np_mean(start, every):
  history, state = _iterates(optim.tail_average(start=start, every=every, second_moment=True))
  chosen = [h for t, h in enumerate(history, start=1) if t > start and (t - start) % every == 0]
  avg = optim.averaged_params(state)
  second = optim.averaged_second_moment(state)
  for k in ('w', 'b'):
    np.testing.assert_allclose(avg[k], np.mean([h[k] for h in chosen], axis=0), rtol=1e-5, atol=1e-6)
    outer = np.mean([np.outer(h[k].ravel(), h[k].ravel()) for h in chosen], axis=0)
    np.testing.assert_allclose(second[k], outer, rtol=1e-5, atol=1e-6)


def test_swa_follows_the_papers_running_average():
  # Izmailov et al. (arXiv 1803.05407), Algorithm 1 with cycle length c: at the end of each cycle after the
  # start, w_swa <- (w_swa * n_models + w) / (n_models + 1). With start=2, c=3 over 12 steps the cycle ends are
  # the iterates t = 5, 8, 11 (counted from 1), written out here rather than derived from the selection rule.
  history, state = _iterates(optim.swa(start=2, every=3))
  for k in ('w', 'b'):
    w_swa, n_models = np.zeros_like(history[0][k]), 0
    for t in (5, 8, 11):
      w_swa = (w_swa * n_models + history[t - 1][k]) / (n_models + 1)
      n_models += 1
    np.testing.assert_allclose(optim.averaged_params(state)[k], w_swa, rtol=1e-5, atol=1e-6)


def test_ema_params_is_the_debiased_geometric_average():
  decay = 0.8
  history, state = _iterates(optim.ema_params(decay))
  t = len(history)
  weights = np.array([(1 - decay) * decay ** (t - s) for s in range(1, t + 1)])
  for k in ('w', 'b'):
    raw = np.tensordot(weights, np.stack([h[k] for h in history]), axes=1)
    np.testing.assert_allclose(optim.averaged_params(state, debias=False)[k], raw, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(optim.averaged_params(state)[k], raw / (1 - decay ** t), rtol=1e-5, atol=1e-6)


def test_updates_pass_through_unchanged_and_jit_once():
  tx = optim.tail_average(start=1)
  traces = []

  def step(u, s, p):
    traces.append(1)
    return tx.update(u, s, p)

  step = jax.jit(step)
  p = jnp.ones(3)
  s = tx.init(p)
  for i in range(3):
    out, s = step(jnp.full(3, float(i)), s, p)
    np.testing.assert_array_equal(out, float(i))
  assert len(traces) == 1


def test_orbax_round_trip(tmp_path):
  _, state = _iterates(optax.chain(optim.tail_average(start=2, second_moment=True), optim.ema_params(0.9)))
  ckpt = ocp.StandardCheckpointer()
  ckpt.save(tmp_path / 's', state)
  ckpt.wait_until_finished()
  restored = ckpt.restore(tmp_path / 's', jax.eval_shape(lambda: state))
  jax.tree.map(np.testing.assert_array_equal, restored, state)


def test_errors():
  with pytest.raises(ValueError, match='start'):
    optim.tail_average(start=-1)
  with pytest.raises(ValueError, match='every'):
    optim.swa(start=0, every=0)
  with pytest.raises(ValueError, match='decay'):
    optim.ema_params(1.0)
  tx = optim.tail_average()
  state = tx.init({'a': jnp.ones(2)})
  with pytest.raises(ValueError, match='params'):
    tx.update({'a': jnp.ones(2)}, state)
  with pytest.raises(ValueError, match='does not match'):
    tx.update({'a': jnp.ones(2)}, state, {'b': jnp.ones(2)})
  with pytest.raises(ValueError, match='no tail_average'):
    optim.averaged_params(optax.sgd(0.1).init(jnp.ones(2)))
