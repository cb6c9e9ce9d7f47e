"""Attacks: ByzFL fixtures, the line search against a port of ByzFL's loop, the worker-axis transform."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import decentral
from decentral import axis

X3 = np.array([[1., 2., 3.], [4., 5., 6.], [7., 8., 9.]])


def test_byzfl_fixtures_and_definitions(x64):
  h = jnp.asarray(X3)
  np.testing.assert_allclose(decentral.a_little_is_enough(h, f=1), [8.5, 9.5, 10.5])
  np.testing.assert_allclose(decentral.inner_product_manipulation(h, f=1), [-8, -10, -12])
  np.testing.assert_allclose(decentral.sign_flipping(h, f=1), [-4, -5, -6])
  np.testing.assert_allclose(decentral.fall_of_empires(h, f=1), [-0.4, -0.5, -0.6])
  np.testing.assert_allclose(decentral.mimic(h, f=1, index=2), [7, 8, 9])
  assert np.all(np.isposinf(decentral.infinite(h, f=1)))
  assert np.all(np.isnan(decentral.not_a_number(h, f=1)))
  g = decentral.gaussian(h, f=1, key=jax.random.key(0), mu=3.0, sigma=0.0)
  np.testing.assert_allclose(g, [3, 3, 3])
  assert decentral.label_flipping(h, f=1) is None
  np.testing.assert_array_equal(decentral.flip_labels(jnp.arange(10), 10), 9 - np.arange(10))
  stacked = decentral.inject(decentral.sign_flipping, h, f=2)
  np.testing.assert_allclose(stacked, np.concatenate([X3, [[-4, -5, -6]] * 2]))


def test_optimal_ipm_fixture(x64):
  """ByzFL: Optimal_IPM(TrMean(1), [NNM(1), Clipping()]) on the 3x3 honest set gives [-2.7488, -3.4360, -4.1232]."""
  rule = decentral.preaggregated(decentral.trimmed_mean, decentral.nnm, decentral.clipping)
  attack = decentral.optimal_inner_product_manipulation(rule)
  got = jax.jit(lambda h: attack(h, f=1, key=None))(jnp.asarray(X3))
  np.testing.assert_allclose(got, [-2.7488, -3.4360, -4.1232], atol=1e-4)


def _byzfl_line_search(fn, evals=20, start=0.0, delta=10.0, ratio=0.8):
  """ByzFL's _expansion_phase + _contraction_phase, transcribed as loops."""
  best_x, best_y = start, fn(start)
  remaining = evals - 1
  while remaining > 0:
    prop = best_x + delta
    y = fn(prop)
    remaining -= 1
    if y > best_y:
      best_x, best_y, delta = prop, y, delta * 2
    else:
      delta *= ratio
      break
  while remaining > 0:
    prop = best_x + delta
    y = fn(prop)
    remaining -= 1
    if y > best_y:
      best_x, best_y = prop, y
    delta *= ratio
  return best_x


@pytest.mark.parametrize('fn', [lambda x, m: -(x - 37.0) ** 2, lambda x, m: m.sin(x / 7.0) * x,
                                lambda x, m: -m.abs(x), lambda x, m: x])
def test_line_maximize_matches_byzfl(x64, fn):
  got = jax.jit(lambda: decentral.attacks.line_maximize(lambda x: fn(x, jnp)))()
  assert float(got) == pytest.approx(_byzfl_line_search(lambda x: fn(x, np)), rel=1e-12)


def test_strongest_attack_is_the_line_searched_scale(x64):
  """The line-searched ALIE against NNM + trimmed mean sends ALIE(tau*), tau* from ByzFL's search on the damage
  |rule(honest + f x ALIE(tau)) - honest mean|; it does at least the damage of tau = 0 (the search's start)."""
  rng = np.random.RandomState(0)
  honest = jnp.asarray(rng.randn(7, 6) + 1.0)
  f = 3
  rule = jax.jit(functools.partial(decentral.nnm_then(decentral.trimmed_mean), f=f, key=None))
  alie = jax.jit(lambda h, tau: decentral.a_little_is_enough(h, tau=tau))

  def damage(tau):
    stacked = jnp.concatenate([honest, jnp.broadcast_to(alie(honest, tau), (f, 6))])
    return float(jnp.linalg.norm(rule(stacked) - honest.mean(0)))

  tau = _byzfl_line_search(damage)
  got = jax.jit(lambda h: decentral.optimal_a_little_is_enough(decentral.nnm_then(decentral.trimmed_mean))(
      h, f=f, key=None))(honest)
  np.testing.assert_allclose(got, alie(honest, tau), rtol=1e-10)
  assert damage(tau) >= damage(0.0)


N, F = 8, 2
ATTACKS = {name: decentral.get_attack(name) for name in decentral.registry.attacks.names()}
ATTACKS['optimal_alie_vs_median'] = decentral.optimal_a_little_is_enough(decentral.median, evals=5)


def _all_attacks(g):
  outs = {}
  for name, attack in ATTACKS.items():
    tx = decentral.byzantine(attack, axis_name='workers', f=F, seed=1)
    state = tx.init(g)
    _, state = tx.update(g, state)  # a second round: the key advances
    outs[name], _ = tx.update(g, state)
  return outs


@pytest.mark.parametrize('backend', ['shard_map', 'pmap'])
def test_every_attack_same_under_vmap_shard_map_pmap(backend):
  g = {'w': jax.random.normal(jax.random.key(0), (N, 3, 2)), 'b': jax.random.normal(jax.random.key(1), (N, 4))}
  want = axis.run(_all_attacks, N)(g)
  got = axis.run(_all_attacks, N, backend=backend)(g)
  for name in ATTACKS:
    for a, b in zip(jax.tree.leaves(want[name]), jax.tree.leaves(got[name])):
      np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6, err_msg=name)
  # Honest workers pass through; the faulty ones send the attack on the honest rows (here SF: minus their mean).
  for leaf_g, leaf_out in zip(jax.tree.leaves(g), jax.tree.leaves(want['sign_flipping'])):
    np.testing.assert_allclose(leaf_out[:N - F], leaf_g[:N - F])
    np.testing.assert_allclose(leaf_out[N - F:], -np.broadcast_to(leaf_g[:N - F].mean(0), leaf_out[N - F:].shape),
                               rtol=1e-5, atol=1e-6)
  for leaf_g, leaf_out in zip(jax.tree.leaves(g), jax.tree.leaves(want['label_flipping'])):
    np.testing.assert_allclose(leaf_out, leaf_g)  # acts on data: everyone sends their own


def test_byzantine_then_aggregate_chain():
  """The composition of the brief: an attack, then NNM + trimmed mean, then SGD, under vmap."""
  tx = optax.chain(decentral.byzantine(decentral.sign_flipping, axis_name='workers', f=3),
                   decentral.aggregate(decentral.nnm_then(decentral.trimmed_mean), axis_name='workers', f=3),
                   optax.sgd(0.1))
  g = jnp.ones((10, 4)) + 0.01 * jax.random.normal(jax.random.key(2), (10, 4))
  out = axis.run(lambda g: tx.update(g, tx.init(g))[0], 10)(g)
  np.testing.assert_allclose(out, -0.1 * np.ones((10, 4)), atol=3e-3)  # SF at -1 is trimmed away
  with pytest.raises(ValueError, match='f must be'):
    decentral.byzantine(decentral.sign_flipping, axis_name='workers', f=-1)
  with pytest.raises(KeyError, match='known'):
    decentral.get_attack('no-such-attack')


@pytest.mark.parametrize('backend', ['shard_map', 'pmap'])
def test_the_briefs_chain_on_every_backend(backend):
  """chain(aggregate(nnm_then(trimmed_mean), f=3), sgd(0.1)) after an ALIE attack, n = 8 devices."""
  tx = optax.chain(decentral.byzantine(decentral.a_little_is_enough, axis_name='workers', f=3),
                   decentral.aggregate(decentral.nnm_then(decentral.trimmed_mean), axis_name='workers', f=3),
                   optax.sgd(0.1))
  step = lambda g: tx.update(g, tx.init(g))[0]
  g = {'w': jax.random.normal(jax.random.key(4), (N, 2, 3)), 'b': jax.random.normal(jax.random.key(5), (N, 3))}
  want = axis.run(step, N)(g)
  got = axis.run(step, N, backend=backend)(g)
  for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(got)):
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a, np.broadcast_to(a[0], a.shape), rtol=1e-6)  # every worker, the same step
