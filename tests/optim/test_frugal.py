"""FRUGAL: the paper's steps by hand, the authors' trajectories, state proportional to density, digits."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.linalg

import digits
import torch_trajectories
from optim import frugal, scale_by_frugal
from optim.optimizers.frugal import top_singular_vectors

B1, B2, EPS = 0.9, 0.999, 1e-8


def _problem(rng, shape):
  x, y = rng.standard_normal((10, shape[0])), rng.standard_normal((10, shape[1]))
  params = {'w': rng.standard_normal(shape), 'b': rng.standard_normal(shape[1])}

  def grads(p):
    r = x @ p['w'] + p['b'] - y
    return {'w': x.T @ r, 'b': r.sum(0)}

  return params, grads


def _adam(g, m, v, t):
  m = B1 * m + (1 - B1) * g
  v = B2 * v + (1 - B2) * g ** 2
  return (m / (1 - B1 ** t)) / (np.sqrt(v / (1 - B2 ** t)) + EPS), m, v


def _run(tx, params, grads, steps):
  """Our trajectory and the states after each step."""
  p = jax.tree.map(jnp.asarray, params)
  state = tx.init(p)
  update = jax.jit(tx.update)
  out = []
  for _ in range(steps):
    updates, state = update(jax.tree.map(jnp.asarray, grads(jax.tree.map(np.asarray, p))), state, p)
    p = optax.apply_updates(p, updates)
    out.append((jax.tree.map(np.asarray, p), state))
  return out


def test_svd_steps_by_hand(x64):
  """GaLore subspace from the current gradient at steps 1 and 3, Adam reset there, signSGD on the rest."""
  rng = np.random.default_rng(0)
  params, grads = _problem(rng, (6, 4))  # rows >= cols: right projection, r = round(4 * 0.5) = 2
  lr, wd, s_in, gap = 0.01, 0.01, 0.5, 2
  ours = _run(frugal(lr, density=0.5, update_gap=gap, weight_decay=wd, inactive_lr_scale=s_in), params, grads, 4)
  w, b = params['w'], params['b']
  mb, vb = np.zeros(4), np.zeros(4)
  for t in range(1, 5):
    g = grads({'w': w, 'b': b})
    if (t - 1) % gap == 0:
      p = np.linalg.svd(g['w'], full_matrices=False)[2][:2]  # Vh[:r]
      m, v, local = np.zeros((6, 2)), np.zeros((6, 2)), 0
    local += 1
    low = g['w'] @ p.T
    a, m, v = _adam(low, m, v, local)
    u = a @ p + s_in * np.sign(g['w'] - low @ p)
    ab, mb, vb = _adam(g['b'], mb, vb, t)
    w, b = w - lr * (u + wd * w), b - lr * (ab + wd * b)
    np.testing.assert_allclose(ours[t - 1][0]['w'], w, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(ours[t - 1][0]['b'], b, rtol=1e-10, atol=1e-13)


def test_columns_without_reset_by_hand(x64):
  """Random columns (read back from the state), moments carried across refreshes, SGD on the rest."""
  rng = np.random.default_rng(1)
  params, grads = _problem(rng, (5, 8))
  lr, s_in, s_p, gap = 0.01, 0.1, 2.0, 2
  tx = frugal(lr, density=0.5, update_gap=gap, projection='columns', reset_statistics=False,
              inactive_update_rule='sgd', inactive_lr_scale=s_in, proj_params_lr_scale=s_p, seed=3)
  ours = _run(tx, params, grads, 4)
  w, b = params['w'], params['b']
  m, v = np.zeros((5, 4)), np.zeros((5, 4))  # int(8 * 0.5) = 4 columns
  mb, vb = np.zeros(8), np.zeros(8)
  chosen = []
  for t in range(1, 5):
    idx = np.asarray(ours[t - 1][1][0].projector['w'])
    chosen.append(tuple(idx))
    g = grads({'w': w, 'b': b})
    a, m, v = _adam(g['w'][:, idx], m, v, t)
    u = s_in * g['w']
    u[:, idx] = a
    ab, mb, vb = _adam(g['b'], mb, vb, t)
    w, b = w - lr * s_p * u, b - lr * ab  # proj_params_lr_scale applies to projected leaves only
    np.testing.assert_allclose(ours[t - 1][0]['w'], w, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(ours[t - 1][0]['b'], b, rtol=1e-10, atol=1e-13)
  assert chosen[0] == chosen[1] and chosen[2] == chosen[3] and chosen[1] != chosen[2]
  assert len(set(chosen[0])) == 4


@pytest.mark.parametrize('fixture, kwargs', [
    ('frugal_svd', dict(density=0.5, update_gap=5, inactive_lr_scale=0.5)),
    ('frugal_svd_sgd', dict(density=0.5, update_gap=5, inactive_update_rule='sgd', inactive_lr_scale=0.1,
                            proj_params_lr_scale=2.0, proj_side='reverse_std')),
    ('frugal_blocks', dict(density=0.5, update_gap=4, projection='blocks', block_order='ascending',
                           inactive_lr_scale=0.3)),
])
def test_matches_the_authors_trajectories(x64, fixture, kwargs):
  """25 float64 steps of the authors' GaloreAdamW / BlockAdamW (fixtures/README.md), fed the same gradients."""
  torch_trajectories.assert_matches_matrix_fixture(frugal(0.01, weight_decay=0.01, **kwargs), fixture,
                                                   ['W1', 'W2', 'b', 's'])


def _bytes(tree):
  return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree) if hasattr(x, 'dtype')
             and not jnp.issubdtype(x.dtype, jax.dtypes.prng_key))


@pytest.mark.parametrize('density', [0.25, 0.5, 1.0])
def test_state_shrinks_with_density(density):
  shapes = [(64, 32), (32, 64), (48, 48), (32, 32)]
  params = {f'w{i}': jnp.zeros(s) for i, s in enumerate(shapes)}
  adam = 2 * 4 * sum(s[0] * s[1] for s in shapes)  # Adam's two float32 moments
  for projection in ('columns', 'svd', 'blocks'):
    state = scale_by_frugal(density, projection=projection).init(params)
    moments = _bytes((state.mu, state.nu, state.block_mu, state.block_nu))
    if projection == 'blocks':  # the buffers hold the largest round(4 * density) tensors
      largest = sorted((s[0] * s[1] for s in shapes), reverse=True)[:round(4 * density)]
      assert moments == 2 * 4 * sum(largest)
    else:
      assert moments == density * adam  # every projected dimension here is a multiple of 4
    extra = _bytes(state.projector)
    if projection == 'svd':  # P is r x (projected dimension): r * min(m, n) numbers per matrix
      assert extra == 4 * sum(round(min(s) * density) * min(s) for s in shapes)


def test_full_density_columns_is_adam_and_zero_density_is_signsgd():
  rng = np.random.default_rng(2)
  params = {'w': jnp.asarray(rng.standard_normal((6, 5)), jnp.float32), 'b': jnp.zeros(5)}
  grads = [jax.tree.map(lambda p, i=i: jnp.sin(p * (i + 1)) + 0.1 * i, params) for i in range(4)]
  cases = [(frugal(1e-2, density=1.0, projection='columns', update_gap=100), optax.adam(1e-2)),
           (frugal(1e-2, density=0.0), optax.chain(optax.partition(
               {'sign': optax.chain(optax.scale_by_sign(), optax.scale(-1e-2)), 'adam': optax.adam(1e-2)},
               {'w': 'sign', 'b': 'adam'})))]
  for tx, ref in cases:
    s, r = tx.init(params), ref.init(params)
    update, ref_update = jax.jit(tx.update), jax.jit(ref.update)
    for g in grads:
      u, s = update(g, s, params)
      v, r = ref_update(g, r, params)
      jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8), u, v)


def test_random_projections_are_orthonormal_reproducible_and_refreshed():
  params = {'w': jnp.zeros((12, 8))}
  g = {'w': jax.random.normal(jax.random.key(0), (12, 8))}

  update = jax.jit(scale_by_frugal(0.5, update_gap=2, projection='random').update)

  def projectors(seed, steps=3):  # the seed only sets the key in the initial state
    state, out = scale_by_frugal(0.5, update_gap=2, projection='random', seed=seed).init(params), []
    for _ in range(steps):
      _, state = update(g, state)
      out.append(np.asarray(state.projector['w']))
    return out

  a, b, c = projectors(0), projectors(0), projectors(1)
  np.testing.assert_allclose(a[0] @ a[0].T, np.eye(4), atol=1e-5)  # right side: 4 orthonormal rows
  np.testing.assert_array_equal(a[0], b[0])
  np.testing.assert_array_equal(a[0], a[1])  # kept within the interval, redrawn at step 3
  assert not np.allclose(a[1], a[2]) and not np.allclose(a[0], c[0])


def test_blocks_activate_a_fraction_of_the_tensors():
  params = {f'w{i}': jnp.ones((4, 3)) * (i + 1) for i in range(4)}
  g = jax.tree.map(lambda p: p - 2.5, params)
  tx = frugal(1.0, density=0.5, update_gap=2, projection='blocks', inactive_lr_scale=0.5)
  state, update = tx.init(params), jax.jit(tx.update)
  active = []
  for _ in range(4):
    updates, state = update(g, state, params)
    idx = set(np.asarray(state[0].active).tolist())
    active.append(idx)
    for i in range(4):
      if i not in idx:  # inactive tensors take -lr * s_in * sign(g)
        np.testing.assert_array_equal(updates[f'w{i}'], -0.5 * np.sign(np.asarray(g[f'w{i}'])))
  assert all(len(a) == 2 for a in active) and active[0] == active[1] and active[2] == active[3]


def test_variants_jit_once_and_keep_bf16():
  params = {'w': jnp.ones((8, 6), jnp.bfloat16), 'v': jnp.ones((6, 8), jnp.bfloat16),
            'conv': jnp.ones((3, 3, 2, 4), jnp.bfloat16), 's': jnp.asarray(1.0, jnp.bfloat16)}
  g = jax.tree.map(lambda p: p * 0.1, params)
  for projection in ('random', 'randperm', 'rows', 'blocks'):
    tx = frugal(1e-2, projection=projection, update_gap=2)
    traces = []

    def step(state, tx=tx, traces=traces):
      traces.append(1)
      return tx.update(g, state, params)

    step = jax.jit(step)
    state = tx.init(params)
    for _ in range(3):
      updates, state = step(state)
    assert len(traces) == 1
    assert all(u.dtype == jnp.bfloat16 and np.all(np.isfinite(np.asarray(u, np.float32)))
               for u in jax.tree.leaves(updates))


@pytest.mark.parametrize('kwargs, name', [
    ({'density': 1.5}, 'density'), ({'update_gap': 0}, 'update_gap'), ({'projection': 'qr'}, 'projection'),
    ({'inactive_update_rule': 'adam'}, 'inactive_update_rule'), ({'b2': 1.0}, 'b2'),
    ({'proj_side': 'full'}, 'proj_side'), ({'svd_method': 'lanczos'}, 'svd_method'),
    ({'oversampling': -1}, 'oversampling'), ({'power_iterations': 1.5}, 'power_iterations')])
def test_rejects_bad_hyperparameters(kwargs, name):
  with pytest.raises(ValueError, match=name):
    frugal(1e-3, **kwargs)


def test_rejects_projecting_a_non_matrix():
  tx = frugal(1e-3, projected=lambda p: jax.tree.map(lambda x: True, p))
  with pytest.raises(ValueError, match='projects matrices only'):
    tx.init({'w': jnp.ones((2, 2)), 'b': jnp.ones(2)})


def test_trains_an_mlp_on_digits():
  fit = digits.fit(frugal(1e-2, update_gap=50))
  assert fit.train_loss < 0.25
  assert fit.test_accuracy > 0.93


def _decaying(rng, m, n, rate=0.8):
  """An m x n matrix with singular values rate^i and Haar singular vectors; returns it, U and V."""
  u, _ = np.linalg.qr(rng.standard_normal((m, n)))
  v, _ = np.linalg.qr(rng.standard_normal((n, n)))
  return (u * rate ** np.arange(n)) @ v.T, u, v


def test_randomized_svd_finds_the_top_subspace_of_a_decaying_spectrum(x64):
  # Principal angles to the exact top-r subspaces (scipy's subspace_angles) fall like (s_{r+p+1} / s_r)^(2q+1):
  # here (0.8^10)^2 ~ 0.011 per power iteration.
  a, u, v = _decaying(np.random.default_rng(0), 300, 120)
  r = 20
  angles = {}
  top = jax.jit(top_singular_vectors, static_argnums=(1, 3, 4))
  for p, q in ((0, 0), (10, 0), (10, 1), (10, 2)):
    uu, vh = top(jnp.asarray(a), r, jax.random.key(0), p, q)
    assert uu.shape == (300, r) and vh.shape == (r, 120)
    np.testing.assert_allclose(vh @ vh.T, np.eye(r), atol=1e-12)
    angles[p, q] = (np.max(scipy.linalg.subspace_angles(v[:, :r], np.asarray(vh).T)),
                    np.max(scipy.linalg.subspace_angles(u[:, :r], np.asarray(uu))))
  assert min(angles[0, 0]) > 0.5  # no oversampling, no power iteration: far off (the test can fail)
  for q in (0, 1):
    assert all(b < 0.05 * a for a, b in zip(angles[10, q], angles[10, q + 1])), angles
  assert max(angles[10, 2]) < 1e-4, angles


def test_subspace_iteration_refines_the_previous_subspace(x64):
  # The same gradient at every refresh: warm-started from the previous projector, each refresh is one more
  # block power step, so the angle to the top-r right subspace shrinks refresh after refresh; the cold
  # randomized SVD with the same budget stays where it is.
  a, _, v = _decaying(np.random.default_rng(1), 80, 40)
  params = {'w': jnp.zeros((80, 40))}
  angles = {}
  for method in ('subspace', 'randomized'):
    tx = scale_by_frugal(density=0.25, update_gap=1, svd_method=method, oversampling=5, power_iterations=0)
    state, update = tx.init(params), jax.jit(tx.update)
    angles[method] = []
    for _ in range(5):
      _, state = update({'w': jnp.asarray(a)}, state)
      p = np.asarray(state.projector['w'])  # r x n, right projection (rows >= cols)
      angles[method].append(np.max(scipy.linalg.subspace_angles(v[:, :10], p.T)))
  sub, cold = angles['subspace'], angles['randomized']
  assert all(b < 0.5 * a for a, b in zip(sub, sub[1:])), sub
  assert sub[-1] < 1e-3 and min(cold) > 10 * sub[-1], angles


@pytest.mark.parametrize('method, shape', [('randomized', (40, 24)), ('subspace', (24, 40))])
def test_randomized_refresh_equals_the_full_svd_on_low_rank_gradients(x64, method, shape):
  # Gradients of rank 5 = r: with 10 oversampling columns the randomized range finder captures their range
  # exactly, so FRUGAL's steps (Adam in the subspace, where sign flips of singular vectors cancel; SGD on the
  # residual, zero up to rounding) equal the full SVD's, on both projection sides.
  rng = np.random.default_rng(2)
  x, y = rng.standard_normal((5, shape[0])), rng.standard_normal((5, shape[1]))
  params = {'w': rng.standard_normal(shape)}
  grads = lambda p: {'w': x.T @ (x @ p['w'] - y)}
  kwargs = dict(density=5 / 24, update_gap=2, inactive_update_rule='sgd', inactive_lr_scale=0.1)
  full = _run(frugal(0.01, **kwargs), params, grads, 5)
  fast = _run(frugal(0.01, svd_method=method, **kwargs), params, grads, 5)
  assert fast[0][1][0].mu['w'].shape == ((40, 5) if shape == (40, 24) else (5, 40))
  for (a, _), (b, _) in zip(full, fast):
    np.testing.assert_allclose(b['w'], a['w'], rtol=0, atol=1e-10)
  assert np.max(np.abs(full[-1][0]['w'] - params['w'])) > 1e-2

