"""The fast rewrites of the rules (fused sums, one-pass Gram statistics, Gram-form Weiszfeld, centered clipping)
and of the stacked-row helpers against the previous implementations, copied here as the oracles, on inputs with
ties, NaN and inf rows, with every size-dependent path forced on small inputs."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import decentral
from decentral import stacked as st
from decentral.robust import passes

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
  """Both the fused sum over rows (n <= FUSED_WEIGHTED_MAX) and the product."""
  x = _stack(tau == 100.0)
  rule = decentral.centered_clipping(tau=tau, iters=iters)
  state = jax.tree.map(lambda v: v[0] * 0 + 3.0, x)
  want = _old_centered_clipping(x, state, tau, iters)
  for fused_max in (passes.FUSED_WEIGHTED_MAX, 0):
    monkeypatch.setattr(passes, 'FUSED_WEIGHTED_MAX', fused_max)
    got, new_state = jax.jit(lambda x, s: rule.apply(x, s, f=1))(x, state)
    for k in x:
      np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-4)
      np.testing.assert_array_equal(got[k], new_state[k])



def _old_mean(x):
  return jax.tree.map(lambda v: jnp.matmul(jnp.full((v.shape[0],), 1.0 / v.shape[0], jnp.float32),
                                           v.reshape(v.shape[0], -1), precision=HIGHEST).reshape(v.shape[1:]), x)


def _old_krum_scores(x, f):
  n = st.num_workers(x)
  rs = st.rows(x)
  d2 = st.pairwise_sq_distances(rs, _old_finite_rows(rs))
  others = jnp.where(jnp.eye(n, dtype=bool), jnp.inf, d2)
  return jnp.sum(-jax.lax.top_k(-others, n - f - 1)[0], axis=1)


def _old_nnm(x, f):
  n = st.num_workers(x)
  rs = st.rows(x)
  d2 = st.pairwise_sq_distances(rs, _old_finite_rows(rs))
  nearest = jax.lax.top_k(-d2, n - f)[1]
  mixing = jnp.zeros((n, n), d2.dtype).at[jnp.arange(n)[:, None], nearest].add(1.0 / (n - f))
  return st.combine(x, mixing)


def _old_geometric_median(x, nu, iters, init):
  rs = st.rows(x)
  finite = _old_finite_rows(rs)
  safe = st.zero_nonfinite(rs, finite)
  if init == 'zero':
    z = [jnp.zeros_like(r[0]) for r in safe]
  else:
    z = [v.reshape(-1) for v in jax.tree.leaves(decentral.median(x))]
  for _ in range(iters):
    dist = jnp.sqrt(sum(jnp.sum((r - zz) ** 2, axis=1) for r, zz in zip(safe, z)))
    w = jnp.where(finite, 1.0 / jnp.maximum(dist, nu), 0.0)
    z = [jnp.matmul(w, r, precision=HIGHEST) / jnp.sum(w) for r in safe]
  return st.unrows(z, x)


def _tied(seed, n, d=300):
  """Small integers times 40 (exact in float32, so tied distances stay tied on every path), with an inf row, a NaN
  row and a zero row when n allows; one leaf of shape (n, 5, 3) and one of (n, d)."""
  rng = np.random.RandomState(seed)
  a = rng.randint(-3, 4, size=(n, 5, 3)).astype(np.float32) * 40
  b = rng.randint(-3, 4, size=(n, d)).astype(np.float32) * 40
  if n >= 7:
    a[1, 2, 0], b[4, 3], b[5, 7] = np.inf, np.nan, -np.inf
    a[6], b[6] = 0, 0
  return {'a': jnp.asarray(a), 'b': jnp.asarray(b)}


def _assert_trees_close(got, want, rtol=1e-6, atol=0.0):
  for k in want:
    np.testing.assert_allclose(got[k], want[k], rtol=rtol, atol=atol)


@pytest.mark.parametrize('n', [3, 16, 17, 40])
def test_mean_equals_the_previous_implementation(n):
  """The fused sum of rows (n <= FUSED_SUM_MAX) and the matrix product (above), with NaN and +-inf propagating to
  the same coordinates (inf - inf is NaN on both)."""
  x = _tied(n, n)
  x['b'] = x['b'].at[0, :3].set(jnp.array([np.nan, np.inf, -np.inf])).at[1, 2].set(np.inf)
  got, want = jax.jit(decentral.mean)(x), jax.jit(_old_mean)(x)
  _assert_trees_close(got, want, atol=1e-4)  # values ~100: the old 1/n-weighted sum rounds where the mean is 0
  assert np.isnan(got['b'][0]) and np.isnan(got['b'][2]) and got['b'][1] == np.inf


def _gram_oracle(x):
  """float64 NumPy: squared norms, finite rows and squared distances (inf to and from non-finite rows)."""
  r = np.concatenate([np.asarray(v, np.float64).reshape(v.shape[0], -1) for v in jax.tree.leaves(x)], axis=1)
  finite = np.isfinite(r).all(axis=1)
  with np.errstate(invalid='ignore', over='ignore'):
    sq = (r ** 2).sum(axis=1)
    d2 = ((r[:, None] - r[None]) ** 2).sum(axis=2)
  d2 = np.where(finite[:, None] & finite[None], d2, np.inf)
  np.fill_diagonal(d2, 0)
  return sq, finite, d2


@pytest.mark.parametrize('tile_bytes', [passes.GRAM_TILE_BYTES, 1])
def test_gram_stats_against_numpy(tile_bytes, monkeypatch):
  """One pass, whole or in 128-column tiles (d = 300: two tiles and a remainder), each tile centred at its own
  row: squared norms, finite rows and distances equal NumPy's in float64, also with a large offset shared by all
  rows (which the centring removes before the Gram form squares it)."""
  monkeypatch.setattr(passes, 'GRAM_TILE_BYTES', tile_bytes)
  fn = jax.jit(lambda x: (lambda s: (s.sq_norms, s.finite, passes.sq_distances(s)))(passes.gram_stats(st.rows(x))))
  x = _tied(0, 9)
  for case in (x, jax.tree.map(lambda v: v + 1e4, x)):
    sq, finite, d2 = fn(case)
    want_sq, want_finite, want_d2 = _gram_oracle(case)
    np.testing.assert_array_equal(finite, want_finite)
    np.testing.assert_allclose(sq[want_finite], want_sq[want_finite], rtol=1e-6)
    assert not np.isfinite(sq[~want_finite]).any()
    np.testing.assert_allclose(d2, want_d2, rtol=1e-6)


@pytest.mark.parametrize('n,tile_bytes', [(9, None), (16, 1), (33, None)])
def test_distance_rules_equal_the_previous_implementation(n, tile_bytes, monkeypatch):
  """Krum's choice, Multi-Krum's and NNM's against the previous pairwise distances (one centre for the whole
  stack), on tied integer inputs with NaN and inf rows: the same rows selected, the same outputs; also with the
  tiles of the Gram pass and of NNM's mixing forced to 128 columns (d = 300: two tiles and a remainder)."""
  if tile_bytes:
    monkeypatch.setattr(passes, 'GRAM_TILE_BYTES', tile_bytes)
    monkeypatch.setattr(passes, 'TILE_BYTES', tile_bytes)
  x = _tied(n, n)
  f = (n - 1) // 4
  scores = jax.jit(lambda x: _old_krum_scores(x, f))(x)
  best = int(np.argmin(scores))
  _assert_trees_close(jax.jit(functools.partial(decentral.krum, f=f))(x), jax.tree.map(lambda v: v[best], x))
  chosen = np.argsort(np.asarray(scores), kind='stable')[:n - f]
  weights = jnp.zeros((n,)).at[chosen].set(1.0 / (n - f))
  _assert_trees_close(jax.jit(functools.partial(decentral.multi_krum, f=f))(x), st.combine(x, weights), atol=1e-4)
  got, want = jax.jit(functools.partial(decentral.nnm, f=f))(x), jax.jit(lambda x: _old_nnm(x, f))(x)
  _assert_trees_close(got, want, rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize('iters,init,nu', [(3, 'zero', 0.1), (5, 'median', 1.0), (0, 'zero', 0.1)])
def test_geometric_median_equals_the_previous_implementation(iters, init, nu):
  """Both distance computations against the previous direct iterations, to float32 rounding: on a random float
  stack, and on tied inputs with NaN and inf rows (weight 0) and a duplicated row. The tied stack's zero row lies
  within the Gram form's error (sqrt(eps) times the spread) of the iterate, so only ``'direct'`` is compared there;
  with that row moved onto row 0 both are."""
  tied = _tied(iters, 9)
  moved = jax.tree.map(lambda v: v.at[6].set(v[0]), tied)
  rand = {'a': jnp.asarray(np.random.RandomState(iters).randn(12, 257).astype(np.float32))}
  for distances, cases in (('direct', (tied, moved, rand)), ('gram', (moved, rand))):
    rule = jax.jit(functools.partial(decentral.geometric_median, nu=nu, iters=iters, init=init, distances=distances))
    for x in cases:
      want = jax.jit(lambda x: _old_geometric_median(x, nu, iters, init))(x)
      _assert_trees_close(rule(x), want, rtol=2e-5, atol=2e-5)
