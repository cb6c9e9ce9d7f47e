"""SGD-noise regimes: the perceptron's exact step moments, test error and data law against enumeration, Monte
Carlo and closed forms; the alpha-trick's lazy limit; noise lengthening training; the crossover reader."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from theory import sgd_noise


def test_abs_x1_follows_its_gamma_law(x64):
  x, y = sgd_noise.sample_data(jax.random.key(0), 100_000, 6, chi=1.0)  # the shape of the next test: one compile
  assert x.dtype == jnp.float64
  np.testing.assert_array_equal(np.sign(x[:, 0]), y)  # the teacher's label is sign(x_1)
  assert scipy.stats.kstest(np.abs(np.asarray(x[:, 0])), lambda t: sgd_noise.abs_x1_cdf(t, 1.0)).pvalue > 1e-3
  assert scipy.stats.kstest(np.abs(np.asarray(x[:, 0])), lambda t: sgd_noise.abs_x1_cdf(t, 0.0)).pvalue < 1e-6


def test_step_moments_match_enumeration_of_all_batches(x64):
  # B = 2 with replacement: the P^2 ordered batches are equally likely.
  p, d, eta, batch = 5, 4, 0.3, 2
  x, y = sgd_noise.sample_data(jax.random.key(1), p, d)
  w = jax.random.normal(jax.random.key(2), (d,)) * 2.0
  g = np.asarray(sgd_noise.per_example_gradients(w, x, y))
  assert 0 < np.count_nonzero(np.any(g != 0, axis=1)) < p  # some margins are met, some are not
  steps = np.array([-eta * g[list(b)].mean(0) for b in itertools.product(range(p), repeat=batch)])
  mean, cov = sgd_noise.step_moments(w, x, y, eta, batch)
  np.testing.assert_allclose(mean, steps.mean(0), atol=1e-14)
  np.testing.assert_allclose(cov, np.cov(steps.T, bias=True), atol=1e-14)
  # the mean step is the full-batch hinge gradient, written out by hand
  active = np.asarray(y * (x @ w) / np.sqrt(d) < 1)
  hand = eta / (p * np.sqrt(d)) * (np.asarray(y)[active, None] * np.asarray(x)[active]).sum(0)
  np.testing.assert_allclose(mean, hand, atol=1e-14)


def test_test_error_closed_form(x64):
  assert sgd_noise.test_error(2.0, 3.0, 0.0) == pytest.approx(math.atan(3.0 / 2.0) / math.pi, abs=1e-10)
  x, y = sgd_noise.sample_data(jax.random.key(3), 100_000, 6, chi=1.0)
  w = jnp.array([1.5, 0.8, -0.5, 0.3, 0.0, 0.2])
  mc = float(jnp.mean(jnp.sign(x @ w) != y))
  se = math.sqrt(mc * (1 - mc) / x.shape[0])
  assert abs(sgd_noise.test_error(1.5, float(jnp.linalg.norm(w[1:])), 1.0) - mc) < 4 * se


def test_perceptron_sgd_fits_and_noise_lengthens_training(x64):
  x, y = sgd_noise.sample_data(jax.random.key(4), 32, 64)
  run = jax.jit(jax.vmap(lambda t: sgd_noise.run_sgd(x, y, temperature=t, batch=4, key=jax.random.key(0),
                                                     max_steps=50_000)))
  out = run(jnp.array([0.03, 10.0]))
  assert bool(out['converged'].all())
  for i in range(2):
    assert float(jnp.min(sgd_noise.margins(out['w'][i], x, y))) >= 1.0
  assert out['t_star'][1] > 5 * out['t_star'][0]   # t* grows with T in the noisy regime
  assert out['w1'][1] > 2 * out['w1'][0]           # and a larger signal is needed to fit


def test_alpha_trick_lazy_limit_and_training_to_zero_hinge_loss(x64):
  # After one SGD step the change of F is alpha-independent up to O(1/alpha) (the 1/alpha^2 loss scale); a full
  # run stops at zero hinge loss with t* = eta x steps. One compilation serves both (alpha and max_steps traced).
  x, y = sgd_noise.sample_data(jax.random.key(5), 16, 10)
  xt = jax.random.normal(jax.random.key(6), (8, 10))
  run = jax.jit(lambda a, m: sgd_noise.train(x, y, alpha=a, temperature=0.05, batch=4, key=jax.random.key(7),
                                             width=32, check_every=1, max_steps=m, x_test=xt, y_test=jnp.ones(8)))
  f3, f4 = run(1e3, 1)['f_test'], run(1e4, 1)['f_test']
  assert float(jnp.abs(f3).max()) > 1e-3
  np.testing.assert_allclose(f3, f4, rtol=2e-2, atol=1e-6)
  params = sgd_noise.init_mlp(jax.random.key(7), 10, 32, 2)
  np.testing.assert_array_equal(sgd_noise.predictor(params, params, xt, 10.0), 0.0)  # F(w_0) = 0
  out = run(1.0, 20_000)
  assert bool(out['converged']) and float(out['train_loss']) == 0.0
  assert float(out['t_star']) == pytest.approx(0.05 * 4 * int(out['steps']))


def test_crossover_and_power_fit():
  temps = np.array([0.01, 0.1, 1.0, 10.0])
  assert sgd_noise.crossover(temps, np.array([1.0, 1.0, 4.0, 40.0])) == pytest.approx(0.1 * 10 ** 0.5)
  assert math.isnan(sgd_noise.crossover(temps, np.ones(4)))
  assert sgd_noise.fit_power([1, 2, 4], [3.0, 1.5, 0.75]) == pytest.approx(-1.0)
  with pytest.raises(ValueError, match='sample_data: chi'):
    sgd_noise.sample_data(jax.random.key(0), 3, 2, chi=-2.0)
