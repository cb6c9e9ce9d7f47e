"""Hutchinson and Hutch++ against exact traces and diagonals of randomly rotated float64 matrices.

A diagonal test matrix would make Rademacher probes exact, so every matrix is Q diag(spectrum) Q^T with a
random rotation Q.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optim.primitives import estimators


def _rotated(spectrum, seed=0):
  q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(len(spectrum), len(spectrum))))
  return (q * spectrum) @ q.T


def _decaying(n=80, power=1.0):
  return _rotated(1.0 / (np.arange(n) + 1.0) ** power)


@functools.partial(jax.jit, static_argnames=('num_probes', 'distribution'))
def _estimate_jit(a, key, num_probes, distribution):
  matvec, params = (lambda v: a @ v), jnp.zeros(a.shape[0], a.dtype)
  return {'trace': estimators.hutchinson_trace(matvec, params, key, num_probes, distribution),
          'diagonal': estimators.hutchinson_diagonal(matvec, params, key, num_probes, distribution),
          'hutchpp': estimators.hutchpp_trace(matvec, params, key, num_probes, distribution)}


def _estimate(a, key, num_probes=200, distribution='rademacher'):
  """All three estimators on a dense matrix; one compilation per (shape, num_probes, distribution).

  Results come back as numpy arrays, so the checks do not compile eager JAX ops.
  """
  return jax.tree.map(np.asarray, _estimate_jit(a, key, num_probes, distribution))


@pytest.mark.parametrize('distribution', ['rademacher', 'gaussian'])
def test_hutchinson_trace_within_three_standard_errors(x64, distribution):
  a = _decaying()
  est, stderr = _estimate(a, jax.random.key(0), distribution=distribution)['trace']
  assert abs(est - np.trace(a)) < 3 * stderr
  # The reported standard error agrees with the closed-form per-probe variance.
  frob2 = np.sum(a ** 2)
  variance = 2 * (frob2 - np.sum(np.diag(a) ** 2)) if distribution == 'rademacher' else 2 * frob2
  assert 0.5 < stderr ** 2 * 200 / variance < 2.0  # the sample variance of 200 probes varies ~25%


@pytest.mark.parametrize('distribution', ['rademacher', 'gaussian'])
def test_hutchinson_diagonal_within_three_standard_errors(x64, distribution):
  a = _decaying()
  diag, stderr = _estimate(a, jax.random.key(1), distribution=distribution)['diagonal']
  z = np.abs(diag - np.diag(a)) / stderr
  # 80 entries: a few beyond 3 standard errors are expected by chance (0.27% each), none beyond 4.5.
  assert np.mean(z < 3) >= 0.95 and z.max() < 4.5
  # Closed-form per-entry variance: sum_{k != j} A_jk^2 (Rademacher), A_jj^2 + sum_k A_jk^2 (Gaussian).
  off = np.sum(a ** 2, axis=1) - np.diag(a) ** 2
  variance = off if distribution == 'rademacher' else off + 2 * np.diag(a) ** 2
  assert 0.6 < np.median(stderr ** 2 * 200 / variance) < 1.5


def test_rademacher_is_exact_on_diagonal_matrices(x64):
  a = np.diag(1.0 / (np.arange(80) + 1.0))
  out = _estimate(a, jax.random.key(2))
  np.testing.assert_allclose(out['trace'][0], np.trace(a), rtol=1e-12)
  np.testing.assert_allclose(out['diagonal'][0], np.diag(a), rtol=1e-12)
  assert out['trace'][1] < 1e-12


@jax.jit
def _abs_errors(a, keys):
  """Mean absolute trace error over keys of Hutchinson and Hutch++ at the same budget of 30 matvecs."""
  matvec, params = (lambda v: a @ v), jnp.zeros(a.shape[0], a.dtype)
  hutch = jax.vmap(lambda k: estimators.hutchinson_trace(matvec, params, k, 30)[0])(keys)
  hutchpp = jax.vmap(lambda k: estimators.hutchpp_trace(matvec, params, k, 30)[0])(keys)
  return jnp.mean(jnp.abs(hutch - jnp.trace(a))), jnp.mean(jnp.abs(hutchpp - jnp.trace(a)))


@pytest.mark.parametrize('power, factor', [(1.0, 0.7), (2.0, 0.3)])
def test_hutchpp_beats_hutchinson_at_equal_budget(x64, power, factor):
  # Averaged over 24 seeds; measured ratios are about 0.3-0.5 (power 1) and 0.03-0.04 (power 2).
  hutch, hutchpp = map(float, _abs_errors(_decaying(power=power), jax.random.split(jax.random.key(3), 24)))
  assert hutchpp < factor * hutch


def test_hutchpp_exact_when_sketch_captures_rank(x64):
  a = _rotated(np.concatenate([np.array([3.0, 2.0, 1.0]), np.zeros(77)]))
  est, stderr = _estimate(a, jax.random.key(4), distribution='gaussian')['hutchpp']
  np.testing.assert_allclose(est, 6.0, rtol=1e-10)
  assert stderr < 1e-10


def test_hutchpp_within_three_standard_errors(x64):
  a = _decaying()
  est, stderr = _estimate(a, jax.random.key(5))['hutchpp']
  assert abs(est - np.trace(a)) < 3 * stderr


def test_estimators_under_jit_on_pytree(x64):
  # A quadratic form on a dict of differently shaped leaves; its Hessian is a fixed rotated matrix.
  a = _rotated(np.linspace(0.5, 2.0, 11), seed=1)
  params = {'w': jnp.zeros((2, 3)), 'b': jnp.zeros(4), 's': jnp.zeros(())}

  def matvec(tree):
    flat = jnp.concatenate([tree['b'], tree['s'][None], tree['w'].ravel()])  # ravel_pytree's (sorted) order
    out = a @ flat
    return {'b': out[:4], 's': out[4], 'w': out[5:].reshape(2, 3)}

  @jax.jit
  def run(params, key):
    return (estimators.hutchinson_trace(matvec, params, key, 64),
            estimators.hutchinson_diagonal(matvec, params, key, 64, 'gaussian'),
            estimators.hutchpp_trace(matvec, params, key, 30, batch_size=5))

  (trace, trace_err), (diag, diag_err), (pp, pp_err) = jax.tree.map(np.asarray, run(params, jax.random.key(6)))
  assert abs(trace - np.trace(a)) < 3 * trace_err and abs(pp - np.trace(a)) < 3 * pp_err
  assert jax.tree.structure(diag) == jax.tree.structure(params)
  assert diag['w'].shape == (2, 3) and diag_err['s'].shape == ()
  flat_diag = np.concatenate([diag['b'], diag['s'][None], diag['w'].ravel()])
  flat_err = np.concatenate([diag_err['b'], diag_err['s'][None], diag_err['w'].ravel()])
  assert np.mean(np.abs(flat_diag - np.diag(a)) < 3 * flat_err) >= 0.9
  # One key, one result.
  assert np.asarray(run(params, jax.random.key(6))[0][0]) == trace


def test_bad_arguments_raise():
  with pytest.raises(ValueError, match='distribution'):
    estimators.hutchinson_trace(lambda v: v, jnp.zeros(3), jax.random.key(0), 4, 'cauchy')
  with pytest.raises(ValueError, match='num_probes'):
    estimators.hutchpp_trace(lambda v: v, jnp.zeros(3), jax.random.key(0), 2)
