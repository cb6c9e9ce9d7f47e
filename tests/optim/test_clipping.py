"""Coordinate-wise clipping: the research code's rule by hand, exactly the top fraction clipped, clipped SGD."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from optim import coordinate_clip, coordinate_clip_sgd
from optim.optimizers.clipping import kth_largest_key, top_fraction_threshold


def _tree(dtype=np.float32, seed=0):
  rng = np.random.RandomState(seed)
  # Heavy-tailed magnitudes, as in the paper's gradients; mixed shapes, a scalar.
  draw = lambda *s: (rng.standard_t(2, size=s) * 10.0 ** rng.uniform(-3, 1, size=s)).astype(dtype)
  return {'w': draw(6, 4), 'conv': draw(3, 3, 2, 4), 'b': draw(4), 's': np.asarray(draw(1)[0])}


def _research_code(tree, fraction, scale=1.0):
  """``clip_top_coordinates`` as the authors wrote it, in NumPy: sort all |g| descending, take index int(N f)."""
  flat = np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)]).astype(np.float64)
  if fraction == 0:
    return tree
  tau = 0.0 if fraction == 1 else np.sort(np.abs(flat))[::-1][int(flat.size * fraction)]
  tau *= scale
  return jax.tree.map(lambda g: np.where(np.abs(g) < tau, g, np.sign(g) * tau).astype(g.dtype), tree)


@pytest.mark.parametrize('fraction', [0.0, 0.01, 0.1, 0.37, 0.5, 0.99, 1.0])
@pytest.mark.parametrize('scale', [1.0, 2.5])
def test_matches_the_research_code(fraction, scale):
  tree = _tree()
  tx = coordinate_clip(fraction, threshold_scale=scale)
  got, _ = tx.update(jax.tree.map(jnp.asarray, tree), tx.init(tree))
  jax.tree.map(np.testing.assert_array_equal, got, _research_code(tree, fraction, scale))


@pytest.mark.parametrize('fraction', [0.02, 0.25, 0.8])
def test_clips_exactly_the_top_fraction(fraction):
  tree = _tree(seed=3)
  n = sum(np.size(x) for x in jax.tree.leaves(tree))
  got, _ = coordinate_clip(fraction).update(jax.tree.map(jnp.asarray, tree), optax.EmptyState())
  changed = sum(int(np.sum(np.asarray(a) != b)) for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(tree)))
  assert changed == int(n * fraction)  # all magnitudes distinct: exactly k coordinates move
  flat_old = np.concatenate([np.ravel(x) for x in jax.tree.leaves(tree)])
  flat_new = np.concatenate([np.ravel(x) for x in jax.tree.leaves(got)])
  moved = flat_new != flat_old
  assert np.min(np.abs(flat_old[moved])) > np.max(np.abs(flat_old[~moved]))  # ... and they are the largest
  np.testing.assert_array_equal(np.sign(flat_new), np.sign(flat_old))


def test_traced_fraction_float64_and_bf16(x64):
  tree = _tree(np.float64, seed=5)
  want = _research_code(tree, 0.1)
  clip = jax.jit(lambda g, f: coordinate_clip(f).update(g, optax.EmptyState())[0])
  jax.tree.map(np.testing.assert_array_equal, clip(tree, 0.1), want)  # exact in float64 too (63-bit search)
  injected = optax.inject_hyperparams(coordinate_clip)(fraction=0.1)
  got, _ = jax.jit(injected.update)(tree, injected.init(tree))
  jax.tree.map(np.testing.assert_array_equal, got, want)
  half = jax.tree.map(lambda x: jnp.asarray(x, jnp.bfloat16), _tree(seed=6))
  out, _ = coordinate_clip(0.2).update(half, optax.EmptyState())
  assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(out))
  jax.tree.map(np.testing.assert_array_equal, out, _research_code(half, 0.2))


def test_threshold_ties_and_edges():
  g = {'a': jnp.array([3.0, -3.0, 1.0, 2.0])}
  assert float(top_fraction_threshold(g, 0.25)) == 3.0  # the 2nd largest |g| is the tied 3
  out, _ = coordinate_clip(0.25).update(g, optax.EmptyState())
  np.testing.assert_array_equal(out['a'], g['a'])  # ties at tau keep their value
  assert float(top_fraction_threshold(g, 1.0)) == 0.0


def test_clipped_sgd_first_steps_by_hand(x64):
  # chain(clip, coupled L2, torch-style heavy ball b_1 = g_1, b <- mu b + g) on a quadratic.
  rng = np.random.RandomState(2)
  w0, target, curv = rng.randn(10), rng.randn(10), 10.0 ** rng.uniform(-2, 2, 10)
  lr, mu, wd, frac = 0.01, 0.9, 0.1, 0.2
  w, buf, want = w0.copy(), None, []
  for _ in range(4):
    g = curv * (w - target)
    tau = np.sort(np.abs(g))[::-1][int(g.size * frac)]
    g = np.where(np.abs(g) < tau, g, np.sign(g) * tau) + wd * w
    buf = g if buf is None else mu * buf + g
    w = w - lr * buf
    want.append(w)
  tx = coordinate_clip_sgd(lr, fraction=frac, momentum=mu, weight_decay=wd)
  params = jnp.asarray(w0)
  state = tx.init(params)
  for w in want:
    updates, state = tx.update(jnp.asarray(curv) * (params - target), state, params)
    params = optax.apply_updates(params, updates)
    np.testing.assert_allclose(params, w, rtol=1e-13)


def test_bad_arguments_are_named():
  with pytest.raises(ValueError, match='fraction'):
    coordinate_clip(1.5)
  with pytest.raises(ValueError, match='threshold_scale'):
    coordinate_clip(0.1, threshold_scale=-1.0)


def _sorted_threshold(tree, fraction):
  """The exact definition: sort every |g| (NaN as infinity) in float64, take index floor(N f)."""
  flat = np.abs(np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)]))
  flat = np.where(np.isnan(flat), np.inf, flat)
  k = int(np.floor(flat.size * fraction))
  return 0.0 if k >= flat.size else np.sort(flat)[::-1][k]


@pytest.mark.parametrize('kind', ['ties', 'zeros', 'nonfinite', 'constant', 'heavy'])
def test_threshold_exact_with_ties_on_a_sampled_tree(kind):
  # 70k coordinates: the first thresholds come from a strided sample, so these go through the counting passes.
  rng = np.random.RandomState(7)
  shapes = [(300, 200), (9000,), (3, 3, 8, 8), ()]
  draw = {'ties': lambda s: rng.randint(-6, 7, size=s) * 0.25,
          'zeros': lambda s: np.where(rng.rand(*s) < 0.6, 0.0, rng.randn(*s)),
          'nonfinite': lambda s: np.select([rng.rand(*s) < 0.004, rng.rand(*s) < 0.004], [np.inf, np.nan],
                                           rng.randn(*s)),
          'constant': lambda s: np.full(s, -1.5),
          'heavy': lambda s: rng.standard_t(1.5, size=s) * 10.0 ** rng.uniform(-20, 20, size=s)}[kind]
  tree = [jnp.asarray(draw(s), jnp.float32) for s in shapes]
  threshold = jax.jit(top_fraction_threshold)
  for fraction in (0.0, 1e-4, 0.003, 0.01, 0.2, 0.5, 0.9, 0.999, 1.0):
    assert float(threshold(tree, fraction)) == _sorted_threshold(tree, fraction), fraction


def test_threshold_exact_whatever_the_first_guesses():
  # The search is exact from any starting thresholds (here useless ones); the sample only makes it fast.
  rng = np.random.RandomState(8)
  leaves = [jnp.asarray(rng.randint(0, 2 ** 20, size=s), jnp.uint32) for s in [(500,), (40, 30)]]
  flat = np.sort(np.concatenate([np.ravel(x) for x in leaves]))[::-1]
  top = jnp.asarray(2 ** 31 - 1, jnp.uint32)
  for k in (0, 1, 17, 999, 1699):
    for guesses in (jnp.zeros(6, jnp.uint32), jnp.full(6, 2 ** 31 - 2, jnp.uint32)):
      got = kth_largest_key(leaves, lambda x: x, jnp.asarray(k), top, guesses, jnp.int32, jnp.float32)
      assert int(got) == int(flat[k])
  assert int(kth_largest_key(leaves, lambda x: x, jnp.asarray(1700), top, jnp.zeros(6, jnp.uint32), jnp.int32,
                             jnp.float32)) == 0  # k = N: no threshold qualifies


def test_threshold_float64_sampled(x64):
  rng = np.random.RandomState(9)
  tree = {'a': jnp.asarray(rng.randint(-50, 50, size=(200, 300)) * np.pi), 'b': jnp.asarray(rng.randn(5000))}
  for fraction in (0.01, 0.37):
    assert float(top_fraction_threshold(tree, fraction)) == _sorted_threshold(tree, fraction)
