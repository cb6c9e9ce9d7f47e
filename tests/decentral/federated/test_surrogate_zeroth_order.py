"""FZooS: the surrogate gradient equals the dense GP posterior-mean gradient (float64, jax.grad of the dense
formula), the random-feature gradient equals jax.grad of phi(x) nu, the correction's first local step by hand,
and FZooS against FedZO (SPSA) at equal queries on a small heterogeneous quadratic."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from decentral.federated import surrogate_zeroth_order as sz


def _dense_posterior_mean(xs, ys, lengthscale, noise):
  """mu(x) = k(x, X) (K + noise I)^{-1} y_n (y_max - y_min) + y_min, written densely in jnp."""
  lo, span = ys.min(), ys.max() - ys.min()
  sq = jnp.sum((xs[:, None] - xs[None]) ** 2, -1)
  gram = jnp.exp(-sq / (2 * lengthscale ** 2)) + noise * jnp.eye(len(xs))
  alpha = jnp.linalg.solve(gram, (ys - lo) / span)
  return lambda x: jnp.exp(-jnp.sum((xs - x) ** 2, -1) / (2 * lengthscale ** 2)) @ alpha * span + lo


def test_surrogate_gradient_is_the_gp_posterior_mean_gradient(x64):
  rng = np.random.default_rng(0)
  xs, x = rng.normal(size=(12, 3)), rng.normal(size=3)
  ys = np.sin(xs).sum(1) + xs[:, 0] ** 2
  for ell, noise in ((1.0, 1e-6), (0.7, 1e-2)):
    want = jax.grad(_dense_posterior_mean(jnp.asarray(xs), jnp.asarray(ys), ell, noise))(jnp.asarray(x))
    got = sz.gp_mean_gradient(xs, ys, x, lengthscale=ell, noise=noise)
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-9, atol=1e-12)


def test_surrogate_gradient_tracks_the_true_gradient_near_dense_queries():
  rng = np.random.default_rng(1)
  x = np.array([0.3, -0.2])
  xs = x + 0.3 * rng.uniform(-1, 1, size=(60, 2))
  f = lambda z: np.sum(np.sin(z), -1) + 0.5 * np.sum(z ** 2, -1)
  got = sz.gp_mean_gradient(xs, f(xs), x, lengthscale=0.5)
  np.testing.assert_allclose(got, np.cos(x) + x, rtol=1e-2)


def test_random_feature_gradient_and_the_average_of_weights(x64):
  rf = sz.random_features(3, 200, lengthscale=0.8, seed=3)
  rng = np.random.default_rng(2)
  xs, x = rng.normal(size=(40, 3)), rng.normal(size=3)
  nu1, nu2 = sz.fit_feature_weights(rf, xs, xs[:, 0] ** 2), sz.fit_feature_weights(rf, xs, xs.sum(1))
  phi = lambda z, nu: (jnp.sqrt(2.0 / 200) * jnp.cos(z @ rf.weights + rf.offset)) @ nu
  np.testing.assert_allclose(sz.feature_gradient(rf, nu1, x), jax.grad(phi)(jnp.asarray(x), nu1), rtol=1e-10)
  # the min-norm fit interpolates its n < M queries; the global surrogate's gradient is the weighted mean
  np.testing.assert_allclose(sz.feature_map(rf, xs) @ nu1, xs[:, 0] ** 2 - (xs[:, 0] ** 2).min(), atol=1e-6)
  np.testing.assert_allclose(sz.feature_gradient(rf, 0.25 * nu1 + 0.75 * nu2, x),
                             0.25 * sz.feature_gradient(rf, nu1, x) + 0.75 * sz.feature_gradient(rf, nu2, x))


def test_first_local_step_by_hand(x64):
  """One round, one local step, SGD: x1 = x0 - lr (grad mu_i + gamma (grad F^ - grad f^_i)) per client, averaged."""
  c = np.array([[1.0, 0.0], [-1.0, 2.0]])
  fs = [lambda z, c=ci: float(np.sum((z - c) ** 2)) for ci in c]
  x0, lr, kw = np.zeros(2), 0.1, dict(num_features=50, rff_queries=30, num_nearest=30, round_explore=8,
                                      explore_per_step=0, explore_radius=0.3, seed=4, lengthscale=1.0)
  got = sz.fzoos(fs, x0, rounds=1, local_steps=1, local_optimizer=optax.sgd(lr), gamma=0.5, **kw)
  # replay the queries: x0 and 8 exploration points per client from the same generator, in client order
  rng = np.random.default_rng(kw['seed'] + 1)
  rf = sz.random_features(2, 50, lengthscale=1.0, seed=4)
  hist = []
  for f in fs:
    pts = np.concatenate([x0[None], x0 + 0.3 * rng.uniform(-1, 1, size=(8, 2))])
    hist.append((pts, np.array([f(p) for p in pts])))
  nus = [sz.fit_feature_weights(rf, *h) for h in hist]
  nu = 0.5 * (nus[0] + nus[1])
  ends = []
  for (pts, ys), nui in zip(hist, nus):
    g = sz.gp_mean_gradient(pts, ys, x0) + 0.5 * (sz.feature_gradient(rf, nu, x0) - sz.feature_gradient(rf, nui, x0))
    ends.append(x0 - lr * g)
  np.testing.assert_allclose(got, 0.5 * (ends[0] + ends[1]), rtol=1e-6, atol=1e-9)


def test_bad_arguments():
  with pytest.raises(ValueError, match='fzoos: rounds'):
    sz.fzoos([lambda z: 0.0], np.zeros(2), rounds=0, local_steps=1)
  with pytest.raises(ValueError, match='weights'):
    sz.fzoos([lambda z: 0.0], np.zeros(2), rounds=1, local_steps=1, weights=[0.5])


def test_fzoos_needs_fewer_queries_than_fedzo_on_heterogeneous_quadratics(x64):
  rng = np.random.default_rng(0)
  d, n = 5, 3
  cs, sc = rng.normal(size=(n, d)), rng.uniform(0.5, 2.0, size=(n, d))
  fs = [lambda z, c=c, s=s: jnp.sum(s * (z - c) ** 2) / d for c, s in zip(cs, sc)]
  big_f = lambda z: float(np.mean([f(z) for f in fs]))
  f_star = big_f((sc * cs).sum(0) / sc.sum(0))
  logs = {'fzoos': [], 'fedzo': []}
  x0 = np.full(d, 2.0)
  sz.fzoos(fs, x0, rounds=3, local_steps=5, num_features=200, rff_queries=80, num_nearest=40, round_explore=10,
           explore_per_step=1, callback=lambda r, x, q: logs['fzoos'].append((q, big_f(x) - f_star)))
  sz.fedzo(fs, x0, rounds=3, local_steps=5, num_directions=10,
           callback=lambda r, x, q: logs['fedzo'].append((q, big_f(x) - f_star)))
  q_fz, gap_fz = logs['fzoos'][-1]
  # FedZO's gap after at least as many queries as FZooS used is still larger
  gap_zo = next(g for q, g in logs['fedzo'] if q >= q_fz)
  assert gap_fz < 0.5 * gap_zo, (logs)
