"""The online harness (optim.online): SEA sequences, regret against the best fixed point, and the bilinear game in
which optimistic OMD converges and plain OMD does not."""

import jax
import jax.numpy as jnp
import numpy as np

from optim.online import bilinear_game, duality_gap, linear_regret, optimistic_omd, sea_linear


def test_sea_sequence_quantities():
  seq = sea_linear(jax.random.key(0), 2000, 8, noise=0.5, switch_every=100, scale=2.0)
  assert float(seq.sigma_sq) == 2000 * 0.25 and float(seq.Sigma_sq) == 4 * 4.0 * 19
  resid = np.asarray(seq.theta - seq.mean)
  np.testing.assert_allclose(np.mean(np.sum(resid ** 2, 1)), 0.25, rtol=0.06)  # E||theta - m||^2 = noise^2


def test_regret_is_measured_against_the_best_point_of_the_ball(x64):
  theta = jnp.asarray(np.random.default_rng(0).normal(size=(30, 3)))
  run = linear_regret(optimistic_omd(radius=1.5), theta, jnp.zeros(3), 1.5)
  best = -1.5 * np.linalg.norm(np.sum(theta, 0))
  np.testing.assert_allclose(run.regret[-1], np.sum(np.sum(theta * run.iterates, 1)) - best, rtol=1e-12)
  assert np.all(np.linalg.norm(run.iterates, axis=1) <= 1.5 + 1e-12)


def test_regret_grows_with_the_noise_and_the_variation(x64):
  regret = jax.jit(lambda theta: linear_regret(optimistic_omd(radius=1.0), theta, jnp.zeros(10), 1.0).regret[-1])
  final = lambda **kw: float(regret(sea_linear(jax.random.key(1), 2000, 10, **kw).theta))
  quiet, noisy, adversarial = final(), final(noise=1.0), final(switch_every=1)
  assert quiet < 2.0                 # sigma = Sigma = 0: O(1)
  assert 20.0 < noisy < 2 * 44.7     # ~ sqrt(sigma^2_{1:T}) = sqrt(2000)
  assert 40.0 < adversarial < 2 * 89.4  # ~ sqrt(Sigma^2_{1:T}) = sqrt(4 * 1999)


def test_optimism_converges_in_the_bilinear_game_where_plain_omd_does_not(x64):
  A = jnp.array([[1.0, -1.0], [-1.0, 1.0]])  # matching pennies on the simplex
  gap = lambda opt: duality_gap(A, *[z[-1] for z in bilinear_game(
      *(optimistic_omd(0.1, mirror_map='entropy', optimism=opt),) * 2, A, jnp.array([0.9, 0.1]),
      jnp.array([0.3, 0.7]), 2000)])
  assert float(gap(True)) < 1e-3 and float(gap(False)) > 0.5
  B = jnp.asarray(np.random.default_rng(0).normal(size=(3, 3)))  # R^3 x R^3, equilibrium at 0
  dist = lambda opt: float(jnp.linalg.norm(jnp.concatenate([z[-1] for z in bilinear_game(
      *(optimistic_omd(0.1, optimism=opt),) * 2, B, jnp.ones(3), jnp.ones(3), 1000)])))
  assert dist(True) < 1.0 < 100.0 < dist(False)
