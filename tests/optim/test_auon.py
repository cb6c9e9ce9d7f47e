"""AuON / Hybrid-AuON: the paper's equations by hand, the authors' trajectories (both versions), linear time."""


import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import digits
import torch_trajectories
from optim import auon, hybrid_auon, scale_by_auon, scale_by_hybrid_auon

QUINTIC = (3.4445, -4.7750, 2.0315)


def _problem(rng):
  """A smooth non-quadratic loss on a (in, out) matrix and a bias; returns params and its gradient."""
  x, y = rng.standard_normal((10, 4)), rng.standard_normal((10, 3))
  params = {'w': 0.5 * rng.standard_normal((4, 3)), 'b': 0.1 * rng.standard_normal(3)}

  def grads(p):
    r = np.tanh(x @ p['w'] + p['b']) - y
    d = r * (1 - np.tanh(x @ p['w'] + p['b']) ** 2)
    return {'w': x.T @ d, 'b': d.sum(0)}

  return params, grads


def _paper_direction(d, ns_steps=0):
  """AuON v1 (arXiv 2509.24320 Sec. 3.1-3.2) for one leaf's Nesterov momentum ``d``, in numpy."""
  if d.ndim >= 2 and ns_steps:
    x = d.T if d.shape[0] > d.shape[1] else d  # the smaller Gram matrix, as the authors' NS
    x = x / (np.linalg.norm(x) + 1e-7)
    a, b, c = QUINTIC
    for _ in range(ns_steps):
      gram = x @ x.T
      x = a * x + (b * gram + c * gram @ gram) @ x
    x = x.T if d.shape[0] > d.shape[1] else x
  else:
    x = d / (np.linalg.norm(d) + 1e-7)
  u = x / (np.sqrt(np.mean(np.cosh(x) ** 2)) + 1e-8)
  if d.ndim >= 2:
    u = u * np.sqrt(max(1.0, d.shape[1] / d.shape[0]))  # fan_out / fan_in, Muon's factor
  return u


@pytest.mark.parametrize('make, ns_steps', [(auon, 0), (hybrid_auon, 1)])
def test_first_steps_by_hand(x64, make, ns_steps):
  rng = np.random.default_rng(0)
  params, grads = _problem(rng)
  lr, mu, wd = 0.05, 0.9, 0.01
  tx = make(lr, momentum=mu, weight_decay=wd)
  state = tx.init(params)
  ours = jax.tree.map(jnp.asarray, params)
  hand, buf = params, {k: np.zeros_like(v) for k, v in params.items()}
  for _ in range(3):
    updates, state = tx.update(jax.tree.map(jnp.asarray, grads(jax.tree.map(np.asarray, ours))), state, ours)
    ours = optax.apply_updates(ours, updates)
    g = grads(hand)
    new = {}
    for k, p in hand.items():
      buf[k] = mu * buf[k] + (1 - mu) * g[k]
      nesterov = mu * buf[k] + (1 - mu) * g[k]
      new[k] = p * (1 - lr * wd) - lr * _paper_direction(nesterov, ns_steps)
    hand = new
    for k in hand:
      np.testing.assert_allclose(np.asarray(ours[k]), hand[k], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize('fixture, make', [
    ('auon_code', lambda: auon(0.1, momentum=0.9, weight_decay=0.01, convention='code')),
    ('hybrid_auon_code', lambda: hybrid_auon(0.1, momentum=0.9, weight_decay=0.01, convention='code')),
    ('auon_paper', lambda: auon(0.05, momentum=0.9)),
])
def test_matches_the_authors_trajectories(x64, fixture, make):
  """25 float64 steps of the authors' optimizers (fixtures/README.md), fed the same gradients."""
  # The parameters the authors' optimizer trained (the paper-era script: the matrices only).
  names = [str(n) for n in np.load(torch_trajectories.FIXTURES / f'{fixture}.npz')['hp/optimized']]
  torch_trajectories.assert_matches_matrix_fixture(make(), fixture, names)


def test_torch_layout_reads_pytorch_matrices_as_the_authors(x64):
  """The paper-era fixture's (out, in) matrices, not transposed: layout='torch' matches; the flax reading takes
  W1 (6 x 4) as fan_in 6, fan_out 4, so its shape factor is 1 instead of sqrt(6/4), and misses."""
  names = ['W1', 'W2']
  torch_trajectories.assert_matches_matrix_fixture(auon(0.05, momentum=0.9, layout='torch'), 'auon_paper', names,
                                                   layout='torch')
  with pytest.raises(AssertionError):
    torch_trajectories.assert_matches_matrix_fixture(auon(0.05, momentum=0.9), 'auon_paper', names, layout='torch')


def test_plain_auon_is_linear_time_and_hybrid_is_not():
  params = {'w': jnp.ones((64, 32)), 'conv': jnp.ones((3, 3, 4, 8)), 'b': jnp.ones(32)}
  grads = jax.tree.map(lambda p: p * 0.3, params)
  for tx, matmuls in ((scale_by_auon(), False), (scale_by_auon(convention='code'), False),
                      (scale_by_hybrid_auon(), True)):
    jaxpr = str(jax.make_jaxpr(tx.update)(grads, tx.init(params)))  # nested jaxprs are printed inline
    assert ('dot_general' in jaxpr) == matmuls


def test_update_is_scale_invariant_and_spectrally_contractive(x64):
  rng = np.random.default_rng(4)
  g = rng.standard_normal((32, 16))
  g[3, 5] = 40.0  # a spike: cosh inflates the RMS, so the whole step shrinks
  tx = scale_by_auon(momentum=0.0)
  u, _ = tx.update({'w': jnp.asarray(g)}, tx.init({'w': g}))
  v, _ = tx.update({'w': jnp.asarray(1e3 * g)}, tx.init({'w': g}))
  np.testing.assert_allclose(u['w'], v['w'], rtol=1e-8)
  assert np.linalg.norm(np.asarray(u['w']), 2) < 1.0  # ||U||_2 <= ||U||_F = ||X||_F / rms < 1
  smooth, _ = tx.update({'w': jnp.asarray(rng.standard_normal((32, 16)))}, tx.init({'w': g}))
  assert np.linalg.norm(np.asarray(u['w'])) < np.linalg.norm(np.asarray(smooth['w']))


def test_bf16_momentum_keeps_its_dtype_and_zero_gradient_gives_zero():
  params = {'w': jnp.ones((4, 3), jnp.bfloat16)}
  for tx in (auon(0.1), hybrid_auon(0.1, convention='code')):
    state = tx.init(params)
    updates, state = jax.jit(tx.update)({'w': jnp.zeros((4, 3), jnp.bfloat16)}, state, params)
    assert state[0].mu['w'].dtype == jnp.bfloat16 and updates['w'].dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(updates['w'], np.float32), 0)


@pytest.mark.parametrize('kwargs, name', [({'convention': 'v2'}, 'convention'), ({'momentum': 1.5}, 'momentum'),
                                          ({'gamma': -1.0}, 'gamma'), ({'weight_decay': -1.0}, 'weight_decay')])
def test_rejects_bad_hyperparameters(kwargs, name):
  with pytest.raises(ValueError, match=name):
    auon(0.1, **kwargs)
  with pytest.raises(ValueError, match='ns_steps'):
    hybrid_auon(0.1, ns_steps=0)


@pytest.mark.parametrize('make', [lambda: auon(0.05), lambda: hybrid_auon(0.05)])
def test_trains_an_mlp_on_digits(make):
  fit = digits.fit(make())
  assert fit.train_loss < 0.25
  assert fit.test_accuracy > 0.93
