"""DP-SGD: equal to the plain optimizer without noise and clip, the first noisy step by hand, the noise variance
measured on one device and across 8 (shard_map, pmap), Poisson masks without recompilation, per-layer
budgets, and training on digits."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optim
from decentral import axis
from experiments.lib.common import data
from optim.trees import gaussian_like
from optim.privacy import sampling


def _problem(b=16, seed=0):
  rng = np.random.default_rng(seed)
  params = {'w': jnp.asarray(rng.standard_normal((5, 3))), 'b': jnp.asarray(rng.standard_normal(3))}
  batch = {'x': jnp.asarray(rng.standard_normal((b, 5))), 'y': jnp.asarray(rng.integers(0, 3, b))}
  return params, batch


def _loss(params, ex):
  logits = ex['x'] @ params['w'] + params['b']
  return -jax.nn.log_softmax(logits)[ex['y']]


def _mean_loss(params, batch):
  return jnp.mean(jax.vmap(_loss, in_axes=(None, 0))(params, batch))


@pytest.mark.parametrize('make', [
    lambda: (optax.chain(optim.dp_sgd_aggregate(jnp.inf, 0.0), optax.adam(0.05)), optax.adam(0.05)),
    lambda: (optim.dp_sgd(0.3, jnp.inf, 0.0, momentum=0.9), optax.sgd(0.3, momentum=0.9)),
])
def test_no_noise_and_infinite_clip_is_the_plain_optimizer(make, x64):
  private, plain = make()
  params, batch = _problem()

  @jax.jit
  def steps(p1, p2):
    s1, s2 = private.init(p1), plain.init(p2)
    for _ in range(2):  # the second step uses the optimizer state of the first
      u1, s1 = private.update(optim.per_example_grads(_loss, p1, batch), s1, p1)
      u2, s2 = plain.update(jax.grad(_mean_loss)(p2, batch), s2, p2)
      p1, p2 = optax.apply_updates(p1, u1), optax.apply_updates(p2, u2)
    return p1, p2

  p1, p2 = steps(params, params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14), p1, p2)


def test_first_noisy_step_by_hand(x64):
  params, batch = _problem(b=6)
  c, sigma, seed = 0.5, 1.3, 11
  tx = optim.dp_sgd_aggregate(c, sigma, seed)
  per_example = optim.per_example_grads(_loss, params, batch)
  out, state = jax.jit(tx.update)(per_example, tx.init(params), params)
  flat = {k: np.asarray(v).reshape(6, -1) for k, v in per_example.items()}
  norms = np.sqrt(sum((v ** 2).sum(1) for v in flat.values()))
  factor = np.minimum(1.0, c / norms)
  z = gaussian_like(jax.random.fold_in(jax.random.key(seed), 0), params)
  for k in params:
    want = (np.tensordot(factor, np.asarray(per_example[k]), axes=(0, 0)) + sigma * c * np.asarray(z[k])) / 6
    np.testing.assert_allclose(out[k], want, rtol=1e-12)
  assert int(state.count) == 1


D, C, SIGMA, ROWS, DRAWS = 8192, 0.8, 1.5, 4, 2


def _per_example(n_rows, seed=0):
  return {'w': jnp.asarray(np.random.default_rng(seed).standard_normal((n_rows, D)), jnp.float32)}


def _noise_variance(outs, clean, divisor):
  noise = (np.asarray(outs, np.float64) - np.asarray(clean, np.float64)) * divisor
  return float(np.mean(noise ** 2))


def test_noise_variance_on_one_device():
  g = _per_example(ROWS)
  tx, clean = optim.dp_sgd_aggregate(C, SIGMA, 3), optim.dp_sgd_aggregate(C, 0.0)
  want, _ = clean.update(g, clean.init(None))
  state, outs = tx.init(None), []
  step = jax.jit(tx.update)
  for _ in range(DRAWS):
    out, state = step(g, state)
    outs.append(out['w'])
  var = _noise_variance(outs, np.broadcast_to(want['w'], (DRAWS, D)), ROWS)
  np.testing.assert_allclose(var, (SIGMA * C) ** 2, rtol=0.06)


@pytest.mark.parametrize('backend', ['shard_map', 'pmap'])
def test_noise_variance_across_8_devices_is_the_calibrated_one(backend):
  """8 shards of 4 examples: clipped sums all-reduced, one shared noise draw: variance (sigma C)^2, not 8 times."""
  n = 8
  g = jax.tree.map(lambda x: x.reshape(n, ROWS, D), _per_example(n * ROWS))
  tx = optim.dp_sgd_aggregate(C, SIGMA, 5, axis_name='workers')
  clean = optim.dp_sgd_aggregate(C, 0.0, axis_name='workers')

  def steps(shard, tx, k):
    state, outs = tx.init(None), []
    for _ in range(k):
      out, state = tx.update(shard, state)
      outs.append(out['w'])
    return jnp.stack(outs)

  noisy = axis.run(functools.partial(steps, tx=tx, k=DRAWS), n, backend=backend)(g)
  want = axis.run(functools.partial(steps, tx=clean, k=1), n, backend=backend)(g)
  noisy, want = np.asarray(noisy), np.asarray(want)
  np.testing.assert_array_equal(noisy, np.broadcast_to(noisy[:1], noisy.shape))  # the replicas stay equal
  single, _ = optim.dp_sgd_aggregate(C, 0.0).update(jax.tree.map(lambda x: x.reshape(n * ROWS, D), g),
                                                    optim.dp_sgd_aggregate(C, 0.0).init(None))
  np.testing.assert_allclose(want[0, 0], single['w'], rtol=1e-5, atol=1e-7)  # the mean over all 32 examples
  var = _noise_variance(noisy[0], np.broadcast_to(want[0, 0], (DRAWS, D)), n * ROWS)
  np.testing.assert_allclose(var, (SIGMA * C) ** 2, rtol=0.06)


def test_per_layer_budgets_calibrate_noise_to_the_total():
  g = {'a': jnp.zeros((2, 2048)), 'b': jnp.zeros((2, 2048))}
  budgets = {'a': 0.3, 'b': 0.4}
  tx = optim.dp_sgd_aggregate(budgets, 2.0, reduction='sum')
  out, _ = tx.update(g, tx.init(None))
  z = np.concatenate([np.asarray(out['a']), np.asarray(out['b'])])
  np.testing.assert_allclose(np.mean(z ** 2), (2.0 * 0.5) ** 2, rtol=0.06)


def test_poisson_mask_divides_by_the_expected_size_and_never_recompiles():
  n, q, cap = 200, 0.05, 24
  xs = jnp.asarray(np.random.default_rng(0).standard_normal((n, 3)), jnp.float32)
  tx = optim.dp_sgd_aggregate(10.0, 0.0, expected_batch_size=q * n)
  traces = []

  @jax.jit
  def step(batch, state):
    traces.append(1)
    return tx.update({'w': xs[batch.indices]}, state, mask=batch.mask)

  state, sizes = tx.init(None), set()
  for _, b in zip(range(6), sampling.poisson_batches(0, n, q, cap)):
    out, state = step(b, state)
    idx = np.asarray(b.indices)[np.asarray(b.mask)]
    np.testing.assert_allclose(out['w'], np.asarray(xs)[idx].sum(0) / (q * n), rtol=1e-5, atol=1e-6)
    sizes.add(int(b.size))
  assert len(sizes) > 1 and len(traces) == 1
  with pytest.raises(ValueError, match='expected_batch_size'):
    optim.dp_sgd_aggregate(1.0, 1.0).update({'w': xs[:4]}, tx.init(None), mask=jnp.ones(4, bool))


def test_same_seed_same_noise_and_keys_advance():
  g = _per_example(2)
  a = optim.dp_sgd_aggregate(1.0, 1.0, 7)
  update = jax.jit(a.update)
  s = a.init(None)
  o1, s = update(g, s)
  o2, _ = update(g, s)
  o1b, _ = update(g, a.init(None))
  np.testing.assert_array_equal(o1['w'], o1b['w'])
  assert not np.allclose(o1['w'], o2['w'])


def test_bad_arguments_are_named():
  with pytest.raises(ValueError, match='noise_multiplier'):
    optim.dp_sgd_aggregate(1.0, -1.0)
  with pytest.raises(ValueError, match='l2_norm_clip'):
    optim.dp_sgd_aggregate(0.0, 1.0)
  with pytest.raises(ValueError, match='finite l2_norm_clip'):
    optim.dp_sgd_aggregate(np.inf, 1.0)
  with pytest.raises(ValueError, match='reduction'):
    optim.dp_sgd_aggregate(1.0, 1.0, reduction='max')
  tx = optim.dp_sgd_aggregate(1.0, 1.0)
  with pytest.raises(ValueError, match='structure'):
    tx.update({'w': jnp.ones((2, 3))}, tx.init({'v': jnp.ones(3)}), {'v': jnp.ones(3)})


def test_trains_digits_privately():
  """sigma = 1, C = 1, Poisson batches of expected size 128 on digits (linear softmax): accuracy well above chance."""
  ds = data.load_digits()
  n, q = len(ds.x_train), 128 / len(ds.x_train)
  x, y = jnp.asarray(ds.x_train).reshape(n, 64), jnp.asarray(ds.y_train)
  params = {'w': jnp.zeros((64, 10)), 'b': jnp.zeros(10)}
  tx = optim.dp_sgd(0.5, 1.0, 1.0, expected_batch_size=128, momentum=0.9)
  cap = sampling.default_capacity(n, q)

  @jax.jit
  def step(params, state, key):
    b = sampling.poisson_batch(key, n, q, cap)
    per_example = optim.per_example_grads(_loss, params, {'x': x[b.indices], 'y': y[b.indices]})
    updates, state = tx.update(per_example, state, params, mask=b.mask)
    return optax.apply_updates(params, updates), state

  state = tx.init(params)
  for t in range(50):
    params, state = step(params, state, jax.random.fold_in(jax.random.key(0), t))
  logits = jnp.asarray(ds.x_test).reshape(-1, 64) @ params['w'] + params['b']
  acc = float(jnp.mean(jnp.argmax(logits, -1) == jnp.asarray(ds.y_test)))
  assert acc > 0.8, acc
  assert 0 < optim.privacy.epsilon(1.0, q, 50, 1e-5) < 10
