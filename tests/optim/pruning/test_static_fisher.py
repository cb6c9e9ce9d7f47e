"""M-FAC's static inverse Fisher against the paper's recursion written out and the dense damped inverse."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from optim.pruning import (fisher_inverse_diagonal, fisher_inverse_entry, fisher_inverse_product,
                           static_fisher_inverse)


def _grads(m=5, d=11, seed=0):
  return np.random.default_rng(seed).normal(size=(m, d))


def _dense_inverse(g, damping):
  m, d = g.shape
  return np.linalg.inv(damping * np.eye(d) + g.T @ g / m)


def test_precomputation_is_the_papers_sherman_morrison_chain(x64):
  g, damping = _grads(), 0.3
  m, d = g.shape
  # Section 3 by hand: F_0^{-1} = I / lambda, v_i = F_{i-1}^{-1} g_i, D_i = m + g_i^T v_i, one rank-one update each.
  inv, vs, ds = np.eye(d) / damping, [], []
  for gi in g:
    v = inv @ gi
    vs.append(v)
    ds.append(m + gi @ v)
    inv = inv - np.outer(v, v) / ds[-1]
  h = static_fisher_inverse(jnp.asarray(g), damping)
  np.testing.assert_allclose(h.vectors[0], np.array(vs), rtol=1e-10, atol=1e-12)
  np.testing.assert_allclose(h.denominators[0], np.array(ds), rtol=1e-12)
  np.testing.assert_allclose(inv, _dense_inverse(g, damping), rtol=1e-9)


@pytest.mark.parametrize('block_size', [None, 4])
def test_products_diagonal_and_entries_match_the_dense_damped_inverse(x64, block_size):
  g, damping = _grads(m=6, d=10, seed=1), 1e-2
  if block_size is None:
    dense = _dense_inverse(g, damping)
  else:  # block-diagonal Fisher: each block of consecutive coordinates inverted on its own
    dense = np.zeros((10, 10))
    for s in range(0, 10, block_size):
      e = min(s + block_size, 10)
      dense[s:e, s:e] = _dense_inverse(g[:, s:e], damping)
  h = static_fisher_inverse(jnp.asarray(g), damping, block_size)
  x = np.random.default_rng(2).normal(size=10)
  np.testing.assert_allclose(fisher_inverse_product(h, jnp.asarray(x)), dense @ x, rtol=1e-9)
  np.testing.assert_allclose(fisher_inverse_diagonal(h), np.diag(dense), rtol=1e-9)
  for j, k in [(0, 0), (3, 7), (2, 3), (9, 9), (5, 4)]:
    np.testing.assert_allclose(fisher_inverse_entry(h, j, k), dense[j, k], rtol=1e-9, atol=1e-12)


def test_bad_input_is_named():
  with pytest.raises(ValueError, match='damping'):
    static_fisher_inverse(jnp.ones((2, 3)), 0.0)
  with pytest.raises(ValueError, match='grads'):
    static_fisher_inverse(jnp.ones(3), 1.0)
  with pytest.raises(ValueError, match='block_size'):
    static_fisher_inverse(jnp.ones((2, 3)), 1.0, block_size=0)
