"""Lanczos stopped on the Ritz residuals (``tol``, ``k``) against numpy's eigh in float64."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optim.primitives import spectral


def _rotated(spectrum, seed=0):
  q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(len(spectrum), len(spectrum))))
  return (q * spectrum) @ q.T


@functools.partial(jax.jit, static_argnames=('num_steps', 'tol', 'k'))
def _run(a, num_steps, tol, k):
  result = spectral.lanczos(lambda v: a @ v, jnp.zeros(a.shape[0], a.dtype), jax.random.key(0), num_steps,
                            return_basis=True, tol=tol, k=k)
  values, vectors = spectral.ritz(result)
  return result, values, vectors, spectral.ritz(result._replace(basis=None))[0]


def _gapped(n=300):
  # Three eigenvalues well above a bulk in [0, 1]: the top three converge in a few dozen steps.
  return _rotated(np.concatenate([[100.0, 60.0, 30.0], np.random.default_rng(1).uniform(0.0, 1.0, n - 3)]))


def test_stops_early_on_a_clear_gap_with_the_same_eigenvalues(x64):
  a = _gapped()
  exact = np.linalg.eigvalsh(a)[-3:]
  stopped, values, vectors, values_only = jax.tree.map(np.asarray, _run(a, 80, 1e-8, 3))
  steps = int(stopped.steps)
  assert steps < 40 and steps % 4 == 0  # checked every 4 steps; the cap of 80 is far away
  np.testing.assert_allclose(values[-3:], exact, rtol=1e-12)
  np.testing.assert_allclose(values_only[-3:], exact, rtol=1e-12)  # bisection path of ritz
  # The stopping rule certifies what it claims: ||A u - theta u|| <= tol |theta| for the top three pairs.
  residuals = np.linalg.norm(vectors[-3:] @ a - values[-3:, None] * vectors[-3:], axis=1)
  assert np.all(residuals <= 1e-8 * np.abs(values[-3:]))
  # Unused rows: NaN values first, zero vectors, zero basis rows and coefficients beyond the steps taken.
  assert np.isnan(values[:80 - steps]).all() and not np.isnan(values[80 - steps:]).any()
  assert np.all(vectors[:80 - steps] == 0.0) and np.all(stopped.basis[steps:] == 0.0)
  assert np.all(stopped.alphas[steps:] == 0.0) and np.all(stopped.betas[steps - 1:] == 0.0)
  basis = stopped.basis[:steps]
  np.testing.assert_allclose(basis @ basis.T, np.eye(steps), atol=1e-12)


def test_waits_for_all_k_and_runs_to_the_cap_when_unreachable(x64):
  # The top eigenvalue stands far above, the next two barely above the bulk in [0, 1].
  a = _rotated(np.concatenate([[100.0, 1.2, 1.1], np.random.default_rng(2).uniform(0.0, 1.0, 297)]), seed=3)
  one = int(_run(a, 80, 1e-8, 1)[0].steps)
  three, values = jax.tree.map(np.asarray, _run(a, 80, 1e-8, 3)[:2])
  assert one < 20 and one < int(three.steps)  # the top pair converges first; k = 3 waits for the slower two
  if three.steps < 80:
    np.testing.assert_allclose(values[-3:], [1.1, 1.2, 100.0], rtol=1e-10)
  # A spectrum without a gap: residuals of 1e-8 on the top three are out of reach in 80 steps.
  flat = _rotated(np.random.default_rng(4).uniform(0.0, 1.0, 300), seed=5)
  assert int(_run(flat, 80, 1e-8, 3)[0].steps) == 80


def test_bad_tol_and_k_raise():
  mv, params, key = (lambda v: v), jnp.zeros(5), jax.random.key(0)
  with pytest.raises(ValueError, match='lanczos: tol'):
    spectral.lanczos(mv, params, key, 4, tol=-1.0)
  with pytest.raises(ValueError, match='lanczos: k'):
    spectral.lanczos(mv, params, key, 4, tol=1e-3, k=5)
