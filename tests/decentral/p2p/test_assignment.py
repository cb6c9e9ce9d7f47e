"""Linear assignment inside jit: the Hungarian method gives scipy's optimum (float64, random and tied costs), batched
and through the scipy callback, and always a permutation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from decentral.p2p.assignment import linear_assignment


@pytest.mark.parametrize('n, maximize', [(1, False), (5, True), (16, False)])
def test_hungarian_matches_scipy_on_random_costs(n, maximize, x64):
  costs = np.random.default_rng(n).normal(size=(6, n, n))
  got = jax.jit(jax.vmap(lambda c: linear_assignment(c, maximize=maximize)))(jnp.asarray(costs))
  want = np.stack([linear_sum_assignment(c, maximize=maximize)[1] for c in costs])
  np.testing.assert_array_equal(got, want)


def test_tied_costs_give_an_optimal_permutation(x64):
  costs = np.random.default_rng(0).integers(0, 3, size=(8, 12, 12)).astype(np.float64)
  got = np.asarray(jax.jit(jax.vmap(linear_assignment))(jnp.asarray(costs)))
  rows = np.arange(12)
  for c, cols in zip(costs, got):
    assert sorted(cols.tolist()) == list(range(12))
    assert c[rows, cols].sum() == c[rows, linear_sum_assignment(c)[1]].sum()


def test_scipy_callback_agrees_batched_and_alone(x64):
  costs = jnp.asarray(np.random.default_rng(1).normal(size=(4, 9, 9)))
  batched = jax.jit(jax.vmap(lambda c: linear_assignment(c, maximize=True, solver='scipy')))(costs)
  hungarian = jax.jit(jax.vmap(lambda c: linear_assignment(c, maximize=True)))(costs)
  np.testing.assert_array_equal(batched, hungarian)
  np.testing.assert_array_equal(linear_assignment(costs[0], maximize=True, solver='scipy'), hungarian[0])


def test_nonfinite_costs_still_give_a_permutation():
  cost = np.random.default_rng(2).normal(size=(6, 6)).astype(np.float32)
  cost[1, :] = np.nan
  cost[3, 2] = np.inf
  cols = np.asarray(jax.jit(linear_assignment)(jnp.asarray(cost)))
  assert sorted(cols.tolist()) == list(range(6))
  assert cols[3] != 2


def test_bad_arguments_name_the_function():
  with pytest.raises(ValueError, match='linear_assignment: solver'):
    linear_assignment(jnp.eye(2), solver='auction')
  with pytest.raises(ValueError, match='linear_assignment: cost must be a square'):
    linear_assignment(jnp.ones((2, 3)))
