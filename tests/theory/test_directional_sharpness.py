"""Tests of theory.directional_sharpness: the sharpness, correlation and local model against closed forms on a
quadratic, the sharpness against the dense Hessian of a small network, and the probes along training against the
directions SGD and Adam take on a quadratic."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optim import dense_matrix, hessian_matvec
from theory import directional_sharpness as ds

A_DIAG = np.array([100.0, 1.0, 0.5, 0.2, 0.1])


def _quadratic(w, batch=None):
  del batch
  return 0.5 * jnp.sum(jnp.asarray(A_DIAG) * w ** 2) + jnp.sum(w)


def test_quadratic_closed_forms(x64):
  rng = np.random.RandomState(0)
  x, v = jnp.asarray(rng.randn(5)), jnp.asarray(rng.randn(5))
  g = A_DIAG * np.asarray(x) + 1.0
  vhv = np.sum(A_DIAG * np.asarray(v) ** 2)
  assert float(ds.sharpness_along(_quadratic, x, v)) == pytest.approx(vhv / np.sum(np.asarray(v) ** 2), rel=1e-13)
  assert float(ds.sharpness_along(_quadratic, x, 3.0 * v)) == pytest.approx(
      float(ds.sharpness_along(_quadratic, x, v)), rel=1e-13)  # scale-invariant
  model = ds.local_model(_quadratic, x, v)
  gv = g @ np.asarray(v)
  assert float(model['best_step']) == pytest.approx(gv / vhv, rel=1e-12)
  assert float(model['correlation']) == pytest.approx(gv / np.linalg.norm(g) / np.linalg.norm(v), rel=1e-12)
  # On a quadratic the second-order model is exact: the model decrease is the true one at the best step.
  true = float(_quadratic(x) - _quadratic(x - model['best_step'] * v))
  assert float(model['model_decrease']) == pytest.approx(true, rel=1e-10)
  grid = np.linspace(0.0, 2.0, 201) * float(model['best_step'])
  best, eta = ds.line_search_decrease(_quadratic, x, v, grid)
  assert float(eta) == pytest.approx(float(model['best_step']), rel=1e-12)
  assert float(best) == pytest.approx(true, rel=1e-10)


def test_sharpness_equals_rayleigh_quotient_of_dense_hessian(x64):
  key = jax.random.key(0)
  params = {'w1': jax.random.normal(key, (3, 4)), 'w2': jax.random.normal(jax.random.fold_in(key, 1), (4,))}
  xb = jax.random.normal(jax.random.fold_in(key, 2), (6, 3))
  loss = lambda p, x: jnp.mean(jnp.tanh(x @ p['w1']) @ p['w2'] ** 2)
  v = jax.tree.map(lambda a: jnp.cos(jnp.arange(a.size, dtype=a.dtype)).reshape(a.shape), params)
  h = np.asarray(dense_matrix(hessian_matvec(loss, params, xb), params))
  flat = np.asarray(jax.flatten_util.ravel_pytree(v)[0])
  assert float(ds.sharpness_along(loss, params, v, xb)) == pytest.approx(flat @ h @ flat / (flat @ flat), rel=1e-10)


def test_probes_along_training_on_a_quadratic(x64):
  x0 = jnp.asarray(np.linspace(1.0, 2.0, 5))
  out = ds.sharpness_along_training(_quadratic, x0, {'sgd': optax.sgd(0.01), 'adam': optax.adam(0.01, eps=1e-12)},
                                    lambda t: None, None, steps=4, every=2, clip_fraction=0.2)
  g0 = A_DIAG * np.asarray(x0) + 1.0
  rayleigh = lambda v: np.sum(A_DIAG * v ** 2) / np.sum(v ** 2)
  sgd, adam = out['sgd'], out['adam']
  np.testing.assert_array_equal(sgd['steps'], [0, 2, 4])
  np.testing.assert_allclose(sgd['sharpness_update'], sgd['sharpness_gradient'], rtol=1e-12)  # SGD's step is -lr g
  assert sgd['sharpness_gradient'][0] == pytest.approx(rayleigh(g0), rel=1e-12)
  # Adam's first direction is g / (|g| + eps) = sign(g): its sharpness is the mean curvature, far below SGD's.
  assert adam['sharpness_update'][0] == pytest.approx(A_DIAG.mean(), rel=1e-9)
  assert adam['sharpness_gradient'][0] == pytest.approx(rayleigh(g0), rel=1e-12)   # the same point as SGD's
  assert adam['sharpness_gradient'][0] > 4 * adam['sharpness_update'][0]
  # Clipping the top 20% (one of five) coordinates cuts the stiff coordinate to the next largest magnitude.
  clipped = np.where(np.abs(g0) < np.sort(np.abs(g0))[-2], g0, np.sign(g0) * np.sort(np.abs(g0))[-2])
  assert sgd['sharpness_clipped_gradient'][0] == pytest.approx(rayleigh(clipped), rel=1e-12)
  assert sgd['sharpness_clipped_gradient'][0] < sgd['sharpness_gradient'][0]
  assert len(sgd['train_loss']) == 4
  np.testing.assert_allclose(sgd['correlation_update'], sgd['correlation_gradient'], rtol=1e-12)
