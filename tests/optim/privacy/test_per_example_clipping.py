"""Per-example clipping: every example's contribution has norm <= C on adversarial inputs (0, inf, -inf, NaN,
huge finite values), per-layer budgets bound each leaf, masks drop rows, and the sum equals a numpy oracle."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optim.privacy import clipping

C = 0.7


def _adversarial(dtype=np.float32):
  """Rows: ordinary, tiny, zero, +inf, NaN, -inf in the second leaf only, huge finite (squares overflow), big."""
  rng = np.random.default_rng(0)
  w = rng.standard_normal((8, 3, 2)).astype(dtype)
  b = rng.standard_normal((8, 4)).astype(dtype)
  w[1], b[1] = w[1] * 1e-3, b[1] * 1e-3
  w[2], b[2] = 0, 0
  w[3, 0, 0] = np.inf
  w[4, 1, 1] = np.nan
  b[5, 2] = -np.inf
  big = np.finfo(dtype).max / 4
  w[6], b[6] = big, -big
  w[7] *= 100
  return {'w': jnp.asarray(w), 'b': jnp.asarray(b)}


def _flat(tree):
  return np.concatenate([np.asarray(x, np.float64).reshape(x.shape[0], -1) for x in jax.tree.leaves(tree)], 1)


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_every_contribution_is_bounded_and_the_rule_holds(dtype, x64):
  g = _adversarial(dtype)
  clipped = clipping.clip_per_example(g, C)
  rows = _flat(clipped)
  norms = np.linalg.norm(rows, axis=1)
  assert np.all(np.isfinite(rows))
  assert np.all(norms <= C * (1 + 1e-6)), norms
  # non-finite rows contribute exactly zero; zero stays zero; the huge finite row is clipped (not dropped)
  np.testing.assert_array_equal(rows[[2, 3, 4, 5]], 0.0)
  np.testing.assert_allclose(norms[[0, 6, 7]], C, rtol=1e-6)
  # a small row passes unchanged
  np.testing.assert_allclose(rows[1], _flat(g)[1], rtol=1e-6)
  # the direction of a clipped row is its own
  raw = _flat(g)
  np.testing.assert_allclose(rows[7], raw[7] * C / np.linalg.norm(raw[7]), rtol=1e-5)
  huge = raw[6] / np.abs(raw[6]).max()
  np.testing.assert_allclose(rows[6], huge * C / np.linalg.norm(huge), rtol=1e-5)


def test_norms_report_inf_for_non_finite_and_do_not_overflow():
  n = np.asarray(clipping.global_norms(_adversarial()))
  assert np.all(np.isinf(n[[3, 4, 5]]))
  assert n[2] == 0 and np.isfinite(n[6]) and n[6] > 1e38


def test_clipped_sum_matches_numpy_with_mask(x64):
  g = _adversarial(np.float64)
  mask = np.array([1, 1, 1, 1, 1, 1, 0, 1], bool)
  got = clipping.clipped_sum(g, C, jnp.asarray(mask))
  raw = _flat(g)
  want = np.zeros(raw.shape[1])
  for i in range(8):
    if mask[i] and np.all(np.isfinite(raw[i])):
      want += raw[i] * min(1.0, C / max(np.linalg.norm(raw[i]), 1e-300))
  np.testing.assert_allclose(_flat(jax.tree.map(lambda x: x[None], got))[0], want, rtol=1e-12)


def test_per_layer_budgets_bound_each_leaf_and_the_total(x64):
  g = _adversarial(np.float64)
  budgets = {'w': 0.3, 'b': 0.4}
  clipped = clipping.clip_per_example(g, budgets)
  for name, c in budgets.items():
    norms = np.linalg.norm(np.asarray(clipped[name]).reshape(8, -1), axis=1)
    assert np.all(norms <= c * (1 + 1e-12))
  total = np.linalg.norm(_flat(clipped), axis=1)
  assert np.all(total <= float(clipping.sensitivity(budgets)) * (1 + 1e-12))
  np.testing.assert_allclose(float(clipping.sensitivity(budgets)), 0.5)
  # a row with a non-finite entry in one leaf is dropped in every leaf
  np.testing.assert_array_equal(np.asarray(clipped['w'][5]), 0.0)


def test_infinite_clip_is_the_identity_on_finite_rows(x64):
  g = {'w': jnp.asarray(np.random.default_rng(1).standard_normal((5, 3)))}
  np.testing.assert_array_equal(clipping.clip_per_example(g, np.inf)['w'], g['w'])


def test_bad_input_is_named():
  with pytest.raises(ValueError, match='l2_norm_clip'):
    clipping.check_clip(-1.0, 'dp_sgd_aggregate')
  with pytest.raises(ValueError, match='leading batch axis'):
    clipping.clipped_sum({'a': jnp.ones((3, 2)), 'b': jnp.ones((4,))}, 1.0)
  with pytest.raises(ValueError, match='mask'):
    clipping.clipped_sum({'a': jnp.ones((3, 2))}, 1.0, jnp.ones(4, bool))
