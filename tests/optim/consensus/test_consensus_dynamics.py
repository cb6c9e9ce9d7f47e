"""CBO (optim.cbo): CBXpy's noise-free trajectories, the first noisy steps by hand, the consensus point's limits,
vmap = shard_map, and finding Rastrigin's global minimum."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from optim.consensus import cbo, consensus_point, run_ensemble

FIXTURE = np.load(__file__.rsplit('/', 2)[0] + '/fixtures/cbx_trajectories.npz')


def rastrigin(x):
  """CBXpy's ``Rastrigin()``: ``10 d + sum(x^2 - 10 cos(2 pi x))``, minimum 0 at 0."""
  return 10.0 * x.shape[-1] + jnp.sum(x ** 2 - 10.0 * jnp.cos(2 * jnp.pi * x))


@pytest.mark.parametrize('case,growth', [('fixed', 1.0), ('growing', 1.05)])
def test_matches_cbxpy_trajectory_without_noise(x64, case, growth):
  x0 = FIXTURE[f'{case}/x0']
  steps = int(FIXTURE[f'{case}/steps'])
  dyn = cbo(rastrigin, alpha=float(FIXTURE[f'{case}/alpha']), lam=1.0, sigma=0.0, dt=0.05, alpha_growth=growth)
  out = run_ensemble(dyn, jnp.asarray(x0), jax.random.key(0), steps, keep_particles=True)
  np.testing.assert_allclose(out.consensus, FIXTURE[f'{case}/consensus'], rtol=0, atol=1e-10)
  np.testing.assert_allclose(out.particles, FIXTURE[f'{case}/x'], rtol=0, atol=1e-10)
  # The particles did move (a fixture of a frozen swarm would prove nothing).
  assert np.max(np.abs(FIXTURE[f'{case}/x'][-1] - x0)) > 0.5


def _by_hand(x, fx, alpha, xi, *, lam, sigma, dt, noise, grad=None, lam_grad=0.0):
  w = np.exp(-alpha * (fx - fx.min()))
  v = (w[:, None] * x).sum(0) / w.sum()
  d = x - v
  if noise == 'isotropic':
    diffusion = np.linalg.norm(d, axis=1, keepdims=True) * xi
  else:
    diffusion = d * xi
  out = x - lam * dt * d + sigma * math.sqrt(dt) * diffusion
  if grad is not None:
    out = out - lam_grad * dt * grad
  return out, v


@pytest.mark.parametrize('noise,lam_grad', [('isotropic', 0.0), ('anisotropic', 0.0), ('anisotropic', 0.3)])
def test_first_two_noisy_steps_by_hand(x64, noise, lam_grad):
  f = lambda x: jnp.sum((x - 0.5) ** 2) + jnp.sin(3 * x[0])
  x = np.random.default_rng(1).normal(size=(5, 3))
  kw = dict(lam=0.7, sigma=0.8, dt=0.1)
  dyn = cbo(f, alpha=2.0, noise=noise, lam_grad=lam_grad, **kw)
  key = jax.random.key(3)
  step = jax.jit(jax.vmap(lambda s: dyn.step(s, key, axis_name='particles'), axis_name='particles'))
  state = jax.vmap(dyn.init)(jnp.asarray(x))
  for t in range(2):
    # The noise of particle i at step t: N(0, I) from fold_in(fold_in(key, t), i), leaf 0.
    xi = np.stack([np.asarray(jax.random.normal(jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(key, t), i),
                                                                   0), (3,), jnp.float64)) for i in range(5)])
    fx = np.asarray(jax.vmap(f)(jnp.asarray(x)))
    grad = np.asarray(jax.vmap(jax.grad(f))(jnp.asarray(x))) if lam_grad else None
    x, v = _by_hand(x, fx, 2.0, xi, noise=noise, grad=grad, lam_grad=lam_grad, **kw)
    state, info = step(state)
    np.testing.assert_allclose(info.consensus[0], v, rtol=1e-12)
    np.testing.assert_allclose(state.x, x, rtol=1e-12, atol=1e-13)


def test_consensus_point_limits(x64):
  x = jnp.asarray(np.random.default_rng(2).normal(size=(6, 2)))
  energy = jnp.asarray([3.0, 1.0, 2.0, 0.5, 4.0, 0.6])
  at = lambda alpha: jax.vmap(lambda a, e: consensus_point(a, e, alpha, 'p'), axis_name='p')(x, energy)[0]
  np.testing.assert_allclose(at(0.0), x.mean(0), rtol=1e-12)  # alpha = 0: the plain mean
  np.testing.assert_allclose(at(1e8), x[3], rtol=1e-12)       # alpha -> inf: the best particle, no overflow


def test_isotropic_noise_uses_the_norm_over_all_leaves(x64):
  f = lambda p: jnp.sum(p['a'] ** 2) + jnp.sum(jnp.cos(p['b']))
  rng = np.random.default_rng(3)
  tree = {'a': jnp.asarray(rng.normal(size=(4, 2))), 'b': jnp.asarray(rng.normal(size=(4, 3)))}
  dyn = cbo(f, alpha=1.5, sigma=0.5, dt=0.1, noise='isotropic')
  key = jax.random.key(0)
  out = jax.jit(jax.vmap(lambda s: dyn.step(dyn.init(s), key)[0].x, axis_name='particles'))(tree)
  fx = np.asarray(jax.vmap(f)(tree))
  w = np.exp(-1.5 * (fx - fx.min()))
  drift = {k: np.asarray(v) - (w[:, None] * np.asarray(v)).sum(0) / w.sum() for k, v in tree.items()}
  norm = np.sqrt(sum((d ** 2).sum(1) for d in drift.values()))[:, None]  # one norm over both leaves
  for leaf, k in enumerate(sorted(tree)):  # leaves are flattened in key order, leaf j draws with fold_in(., j)
    xi = np.stack([np.asarray(jax.random.normal(jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(key, 0), i),
                                                                    leaf), tree[k].shape[1:], jnp.float64))
                   for i in range(4)])
    expected = np.asarray(tree[k]) - 0.1 * drift[k] + 0.5 * math.sqrt(0.1) * norm * xi
    np.testing.assert_allclose(out[k], expected, rtol=1e-12, atol=1e-13)


def test_vmap_equals_shard_map_with_noise(x64):
  # Same particle indices, hence the same noise; only the order of the cross-device sums differs (float64).
  dyn = cbo(rastrigin, alpha=5.0, sigma=0.7, dt=0.05, noise='anisotropic', lam_grad=0.01)
  x0 = jax.random.uniform(jax.random.key(0), (2, 16, 4), jnp.float64, minval=-3.0, maxval=3.0)
  a = run_ensemble(dyn, x0, jax.random.key(1), 10)
  b = run_ensemble(dyn, x0, jax.random.key(1), 10, backend='shard_map', devices=jax.devices()[:8])
  assert float(jnp.max(jnp.abs(a.x - x0))) > 0.1
  for u, v in zip(a, b):
    if u is not None:
      np.testing.assert_allclose(u, v, rtol=1e-10, atol=1e-10)


def test_finds_rastrigin_minimum_in_2d():
  dyn = cbo(rastrigin, alpha=1.0, sigma=1.0, dt=0.01, noise='anisotropic', alpha_growth=1.05)
  x0 = jax.random.uniform(jax.random.key(0), (10, 40, 2), minval=-3.0, maxval=3.0)
  out = run_ensemble(dyn, x0, jax.random.key(1), 300)
  success = jnp.max(jnp.abs(out.consensus[-1]), axis=-1) < 0.25
  assert float(jnp.mean(success)) >= 0.9


def test_bad_arguments_are_named():
  with pytest.raises(ValueError, match='noise'):
    cbo(rastrigin, noise='gaussian')
  with pytest.raises(ValueError, match='dt'):
    cbo(rastrigin, dt=0.0)
  with pytest.raises(ValueError, match='sigma'):
    cbo(rastrigin, sigma=-1.0)
  with pytest.raises(ValueError, match='multiple of the number of devices'):
    run_ensemble(cbo(rastrigin), jnp.zeros((1, 10, 2)), jax.random.key(0), 2, backend='shard_map')
