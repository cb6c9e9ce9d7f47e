"""Tests of theory.oscillation: the data model's statistics, the network's gradient against its closed form, one
SGD step by hand, and the oscillation and alignment read-outs."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from theory import oscillation as osc
from theory.numerics import float64


def test_data_model_statistics():
  n, d, rho, sigma = 4000, 30, 0.3, 0.7
  data = osc.feature_noise_data(0, n, dim=d, strong_fraction=rho, weak_norm=0.5, strong_norm=4.0, noise_std=sigma)
  x, y, strong, v, u = (data[k] for k in ('x', 'y', 'strong', 'v', 'u'))
  assert x.shape == (n, 3, d) and x.dtype == np.float64
  assert set(np.unique(y)) == {-1.0, 1.0} and abs(y.mean()) < 4 / np.sqrt(n)
  assert np.linalg.norm(v) == 0.5 and np.linalg.norm(u) == 4.0 and v @ u == 0
  np.testing.assert_array_equal(x[:, 0], y[:, None] * v)                     # the weak feature, everywhere
  np.testing.assert_array_equal(x[strong, 1], y[strong, None] * u)           # the strong feature, in a fraction
  assert abs(strong.mean() - rho) < 4 * np.sqrt(rho * (1 - rho) / n)
  noise = np.concatenate([x[~strong, 1], x[:, 2]])
  np.testing.assert_array_equal(noise @ v, 0.0)                              # noise orthogonal to both features
  np.testing.assert_array_equal(noise @ u, 0.0)
  assert np.var(noise[:, 2:]) == pytest.approx(sigma ** 2, rel=0.02)
  test = osc.feature_noise_data(1, 500, dim=d, strong=False)
  assert not test['strong'].any()
  with pytest.raises(ValueError, match='dim'):
    osc.feature_noise_data(0, 4, dim=2)


def _closed_form_gradient(w, x, y, kind):
  # f = (1/m) sum_r sum_p [relu(<w_{+,r}, x_p>)^2 - relu(<w_{-,r}, x_p>)^2]; dL/dw_{j,r} = mean_i l'(f_i) s_j
  # (1/m) sum_p 2 relu(<w_{j,r}, x_ip>) x_ip, with l'(f) = f - y (square) or -y / (1 + exp(y f)) (logistic).
  m = w.shape[1]
  z = np.einsum('jrd,npd->njrp', w, x)
  f = (np.maximum(z, 0) ** 2).sum(-1).mean(-1) @ np.array([1.0, -1.0])
  dl = f - y if kind == 'square' else -y / (1 + np.exp(y * f))
  sign = np.array([1.0, -1.0])
  grad = np.einsum('n,j,njrp,npd->jrd', dl, sign, 2 * np.maximum(z, 0), x) / (m * len(y))
  return grad, f


@pytest.mark.parametrize('kind', ['square', 'logistic'])
def test_gradient_matches_closed_form(kind, x64):
  import jax
  data = osc.feature_noise_data(0, 12, dim=7)
  w = np.asarray(osc.init_filters(1, 3, 7, init_std=0.5))
  grad, f = _closed_form_gradient(w, data['x'], data['y'], kind)
  np.testing.assert_allclose(osc.cnn_output(jnp.asarray(w), jnp.asarray(data['x'])), f, rtol=1e-12)
  np.testing.assert_allclose(jax.grad(osc.loss)(jnp.asarray(w), jnp.asarray(data['x']), jnp.asarray(data['y']),
                                                'relu2', kind), grad, rtol=1e-11, atol=1e-15)


def test_one_full_batch_step_by_hand():
  data = osc.feature_noise_data(2, 8, dim=5)
  out = osc.train_sgd(data, [0.3, 1.5], steps=1, batch_size=8, width=2, init_std=0.5, log_every=1, seed=4)
  w0 = np.asarray(float64(osc.init_filters)(4, 2, 5, 0.5))
  grad, f = _closed_form_gradient(w0, data['x'], data['y'], 'square')
  for i, lr in enumerate((0.3, 1.5)):
    np.testing.assert_allclose(out['filters'][i], w0 - lr * grad, rtol=1e-12, atol=1e-15)
  assert out['loss'][0, 0] == pytest.approx(0.5 * np.mean((f - data['y']) ** 2), rel=1e-12)
  strong = data['strong']
  assert out['strong_residual'][0, 0] == pytest.approx(
      np.mean((data['y'] * (f - data['y']))[strong]) if strong.any() else 0.0, rel=1e-12)


def test_alignment_and_oscillation_index():
  v = jnp.array([0.0, 2.0, 0.0])
  w = jnp.zeros((2, 3, 3)).at[0, 1, 1].set(3.0).at[1, 0, 1].set(-1.0)
  assert float(osc.feature_alignment(w, v)) == pytest.approx(0.5 * (3.0 + 1.0))
  smooth = np.exp(-np.arange(100.0))
  swinging = 0.1 * (-1.0) ** np.arange(100)
  assert osc.oscillation_index(smooth, window=50) < 1e-15
  assert osc.oscillation_index(swinging, window=50) == pytest.approx(0.2, rel=1e-12)
