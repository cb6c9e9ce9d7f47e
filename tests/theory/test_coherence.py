"""Tests of theory.coherence: the m-coherence against the O(m^2) Gram definition and its closed-form values
(orthogonal, identical, cancelling gradients), the robust means against NumPy sorts, the label corruption, and one
winsorised SGD step and the logged coherence against single-example gradients."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optim import per_example_grads
from theory import coherence as co


def test_closed_forms_orthogonal_identical_and_cancelling(x64):
  # A linear model on one-hot inputs: example i only touches coordinate i, so the gradients are orthogonal.
  m = 6
  loss = lambda w, ex: 0.5 * (ex['x'] @ w - ex['y']) ** 2
  grads = per_example_grads(loss, jnp.zeros(m), {'x': jnp.eye(m), 'y': jnp.arange(1.0, m + 1)})
  assert float(co.m_coherence(grads)) == pytest.approx(1.0, rel=1e-14)
  assert float(co.alpha_coherence(grads)) == pytest.approx(1.0 / m, rel=1e-14)
  same = jnp.tile(jnp.array([[1.0, -2.0, 3.0]]), (m, 1))
  assert float(co.m_coherence(same)) == pytest.approx(m, rel=1e-14)
  cancelling = jnp.array([[1.0, 2.0], [-1.0, -2.0], [3.0, 0.0], [-3.0, 0.0]])
  assert float(co.m_coherence(cancelling)) == pytest.approx(0.0, abs=1e-15)


def test_linear_time_formula_equals_gram_definition_and_pairwise_identity(x64):
  key = jax.random.key(0)
  grads = {'a': jax.random.normal(key, (9, 4, 3)) + 0.3, 'b': jax.random.normal(jax.random.fold_in(key, 1), (9, 5))}
  alpha = float(co.alpha_coherence(grads))
  assert alpha == pytest.approx(float(co.gram_coherence(grads)), rel=1e-12)
  flat = np.concatenate([np.asarray(grads['a']).reshape(9, -1), np.asarray(grads['b'])], axis=1)
  gram = flat @ flat.T
  off_diagonal = gram.sum() - np.trace(gram)
  assert float(co.m_coherence(grads)) == pytest.approx(1 + off_diagonal / np.trace(gram), rel=1e-12)
  with pytest.raises(ValueError, match='leading'):
    co.alpha_coherence({'a': jnp.ones((3, 2)), 'b': jnp.ones((4,))})


def test_order_statistic_and_winsorized_mean_match_numpy_sorts(x64):
  rng = np.random.RandomState(0)
  g = np.round(rng.randn(11, 3, 4), 1)  # rounding makes ties
  s = np.sort(g, axis=0)
  for c in (0, 1, 3, 5):
    np.testing.assert_array_equal(co.order_statistic(jnp.asarray(g), c), s[-1 - c])
    np.testing.assert_allclose(co.winsorized_mean(jnp.asarray(g), c), np.clip(g, s[c], s[-1 - c]).mean(0),
                               rtol=0, atol=1e-14)
  np.testing.assert_allclose(co.winsorized_mean({'w': jnp.asarray(g)}, 0)['w'], g.mean(0), atol=1e-15)
  with pytest.raises(ValueError, match='winsorized_mean'):
    co.winsorized_mean(jnp.asarray(g), 6)


def test_median_of_means_matches_numpy_and_is_the_mean_on_identical_groups(x64):
  rng = np.random.RandomState(1)
  g = rng.randn(13, 5)
  np.testing.assert_allclose(co.median_of_means(jnp.asarray(g)), np.median(g[:12].reshape(3, 4, 5).mean(1), 0),
                             atol=1e-15)
  np.testing.assert_allclose(co.median_of_means(jnp.asarray(g), 4), np.median(g[:12].reshape(4, 3, 5).mean(1), 0),
                             atol=1e-15)
  group = rng.randn(4, 5)
  np.testing.assert_allclose(co.median_of_means(jnp.asarray(np.concatenate([group] * 3))), group.mean(0), atol=1e-15)


def test_corrupt_labels_redraws_the_requested_fraction():
  y = np.arange(3000) % 10
  labels, wrong = co.corrupt_labels(y, 0.5, 10, seed=3)
  assert np.all(labels[~wrong] == y[~wrong]) and np.all(labels[wrong] != y[wrong])
  assert wrong.mean() == pytest.approx(0.5 * 0.9, abs=0.03)  # a redrawn label is right with probability 1/k
  assert not co.corrupt_labels(y, 0.0, 10)[1].any()


def test_one_winsorized_training_step_by_hand(x64):
  # Full batch (B = n): the winsorised mean does not depend on the order of the batch, so the step is deterministic.
  x, y, xt, yt = co.digits()
  x, y = x[:12], y[:12]
  out = co.train_with_coherence(x, y, xt[:5], yt[:5], hidden=(4,), steps=1, batch_size=12, learning_rate=0.5,
                                aggregator='winsorized', c=2, eval_every=1, coherence_size=12, seed=7)
  params = co.init_mlp(7, (64, 4, 10))
  grad = jax.jit(jax.grad(co.mean_loss))
  per = [jax.tree.leaves(grad(params, jnp.asarray(x[i:i + 1]), jnp.asarray(y[i:i + 1]))) for i in range(12)]
  leaves, treedef = jax.tree.flatten(params)
  new = []
  for k, p in enumerate(leaves):
    g = np.stack([q[k] for q in per])
    s = np.sort(g, axis=0)
    new.append(p - 0.5 * np.clip(g, s[2], s[-3]).mean(0))
  new = jax.tree.unflatten(treedef, new)
  xs, ys = jnp.asarray(x), jnp.asarray(y)
  assert out['loss'][0] == pytest.approx(float(co.mean_loss(params, xs, ys)), rel=1e-12)
  assert out['loss'][1] == pytest.approx(float(co.mean_loss(new, xs, ys)), rel=1e-12)
  # The logged m-coherence (vmapped per-example gradients) against the Gram matrix of single-example gradients.
  singles = {k: np.stack([q[k] for q in per]) for k in range(len(leaves))}
  assert out['m_coherence'][0] == pytest.approx(12 * float(co.gram_coherence(singles)), rel=1e-10)
