"""The single-pass rewrites of centered clipping and of the stacked-row helpers (non-finite rows, Gram-form
distances) against the previous implementations, copied here as the oracles, on inputs with NaN and inf rows."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import decentral
from decentral import stacked as st

HIGHEST = jax.lax.Precision.HIGHEST


def _old_finite_rows(rs):
  return functools.reduce(jnp.logical_and, [jnp.all(jnp.isfinite(r), axis=1) for r in rs])


def _old_pairwise_sq_distances(rs, finite):
  safe = st.zero_nonfinite(rs, finite)
  norms = jnp.where(finite, st.sq_norms(safe), jnp.inf)
  count = jnp.sum(finite)
  centre = jnp.argsort(norms, stable=True)[jnp.maximum(count - 1, 0) // 2]
  centred = [jnp.where(finite[:, None], r - r[centre], 0) for r in safe]
  gram = st.gram_matrix(centred)
  diag = jnp.diagonal(gram)
  d2 = jnp.maximum(diag[:, None] + diag[None, :] - 2 * gram, 0)
  both = finite[:, None] & finite[None, :]
  return jnp.where(jnp.eye(len(finite), dtype=bool), 0, jnp.where(both, d2, jnp.inf))


def _old_centered_clipping(stacked, state, tau, iters):
  n = st.num_workers(stacked)
  rs = st.rows(stacked)
  finite = _old_finite_rows(rs)
  safe = st.zero_nonfinite(rs, finite)
  v = [jnp.reshape(s, (-1,)).astype(r.dtype) for s, r in zip(jax.tree.leaves(state), rs)]
  for _ in range(iters):
    diff = [r - vv for r, vv in zip(safe, v)]
    norm = jnp.sqrt(st.sq_norms(diff))
    scale = jnp.where(finite, jnp.minimum(1.0, tau / norm), 0.0)
    v = [vv + jnp.matmul(scale, d, precision=HIGHEST) / n for vv, d in zip(v, diff)]
  return st.unrows(v, stacked)


def _stack(seed, n=7):
  """Two leaves; row 1 has an inf, row 4 a NaN, row 5 equals the centre's start (zero), ties elsewhere."""
  rng = np.random.RandomState(seed)
  a = rng.randint(-3, 4, size=(n, 5, 3)).astype(np.float32) * 40
  b = rng.randn(n, 300).astype(np.float32) * 100
  a[1, 2, 0], b[4, 3] = np.inf, np.nan
  a[5], b[5] = 0, 0
  return {'a': jnp.asarray(a), 'b': jnp.asarray(b)}


@pytest.mark.parametrize('seed', [0, 1])
def test_row_helpers_equal_the_previous_implementation(seed, monkeypatch):
  """Seed 1 forces the Gram matrix into 128-column tiles (d = 315 makes three, the last one overlapping)."""
  if seed:
    monkeypatch.setattr(st, 'GRAM_TILE_BYTES', 1)
  def both(finite_rows, pairwise_sq_distances, x):
    rs = st.rows(x)
    return finite_rows(rs), pairwise_sq_distances(rs, finite_rows(rs))

  new = jax.jit(functools.partial(both, st.finite_rows, st.pairwise_sq_distances))
  old = jax.jit(functools.partial(both, _old_finite_rows, _old_pairwise_sq_distances))
  for x in (_stack(seed), jnp.full((3, 4), jnp.nan)):
    (finite, d2), (old_finite, old_d2) = new(x), old(x)
    np.testing.assert_array_equal(finite, old_finite)
    np.testing.assert_allclose(d2, old_d2, rtol=1e-5, atol=1e-2)


@pytest.mark.parametrize('tau,iters', [(100.0, 1), (30.0, 3)])
def test_centered_clipping_equals_the_previous_implementation(tau, iters, monkeypatch):
  """Both the fused sum over rows (n <= FUSED_ROWS_MAX) and the matrix-product one."""
  x = _stack(tau == 100.0)
  rule = decentral.centered_clipping(tau=tau, iters=iters)
  state = jax.tree.map(lambda v: v[0] * 0 + 3.0, x)
  want = _old_centered_clipping(x, state, tau, iters)
  for fused_max in (st.FUSED_ROWS_MAX, 0):
    monkeypatch.setattr(st, 'FUSED_ROWS_MAX', fused_max)
    got, new_state = jax.jit(lambda x, s: rule.apply(x, s, f=1))(x, state)
    for k in x:
      np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-4)
      np.testing.assert_array_equal(got[k], new_state[k])

