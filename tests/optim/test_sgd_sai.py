"""SGD-SaI: first steps from the equations, the official trajectory, one moment and a g-SNR fixed at step 1."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import torch_trajectories
import optim
from optim import sgd_sai, scale_by_sgd_sai

RNG = np.random.RandomState(1)
INIT = {'w': RNG.randn(3, 4), 'b': RNG.randn(4), 's': np.asarray(0.7)}
TARGET = {'w': RNG.randn(3, 4), 'b': RNG.randn(4), 's': np.asarray(-0.2)}
CURV = {'w': RNG.uniform(0.5, 3, (3, 4)), 'b': RNG.uniform(0.5, 3, 4), 's': np.asarray(2.0)}


def grad(p):
  return {k: CURV[k] * (p[k] - TARGET[k]) for k in p}


def by_hand(steps, lr, momentum, eps, wd, degenerate):
  p = {k: v.copy() for k, v in INIT.items()}
  m, gsnr, out = {}, {}, []
  for t in range(steps):
    g = grad(p)
    for k in p:
      if t == 0:
        if g[k].size > 1:
          gsnr[k] = np.linalg.norm(g[k]) / (np.std(g[k], ddof=1) + eps)  # torch's unbiased std
        else:
          gsnr[k] = np.abs(g[k]) / eps if degenerate is None else degenerate
        m[k] = g[k]  # no dampening at the first step
      else:
        m[k] = momentum * m[k] + (1 - momentum) * g[k]
    p = {k: p[k] * (1 - wd * lr) - lr * gsnr[k] * m[k] for k in p}
    out.append(p)
  return out


def run(tx, steps):
  params = jax.tree.map(jnp.asarray, INIT)
  state = tx.init(params)
  out = []
  for _ in range(steps):
    updates, state = tx.update(jax.tree.map(jnp.asarray, grad(jax.tree.map(np.asarray, params))), state, params)
    params = optax.apply_updates(params, updates)
    out.append(jax.tree.map(np.asarray, params))
  return out, state


@pytest.mark.parametrize('degenerate', [1.0, None])
def test_first_steps_by_hand(x64, degenerate):
  lr = 1e-2 if degenerate else 1e-11  # the official |g|/eps scale of the scalar needs a tiny lr to stay sane
  want = by_hand(4, lr=lr, momentum=0.9, eps=1e-8, wd=0.5, degenerate=degenerate)
  got, _ = run(sgd_sai(lr, momentum=0.9, eps=1e-8, weight_decay=0.5, degenerate_gsnr=degenerate), 4)
  for t, (g, w) in enumerate(zip(got, want)):
    for k in w:
      np.testing.assert_allclose(g[k], w[k], rtol=1e-12, err_msg=f'step {t + 1}, {k}')


def test_matches_official_trajectory(x64):
  init, grads, reference, hp = torch_trajectories.load('sgd_sai')
  tx = sgd_sai(hp['lr'], momentum=hp['momentum'], eps=hp['eps'], weight_decay=hp['weight_decay'])
  torch_trajectories.assert_trajectories_match(torch_trajectories.replay(tx, init, grads), reference)


def test_matches_pytorch_optimizer_with_its_momentum_start_and_vector_scale(x64):
  # pytorch-optimizer's SGDSaI: m_0 = 0 (a first step 1 - mu = 0.1 times the authors') and ||g|| for the bias b
  # and the scalar s (the authors' g-SNR, degenerate for s, gives 1).
  init, grads, reference, hp = torch_trajectories.load('sgd_sai_pytorch_optimizer')
  kwargs = dict(momentum=hp['momentum'], eps=hp['eps'], weight_decay=hp['weight_decay'])
  ours = torch_trajectories.replay(sgd_sai(hp['lr'], **kwargs, momentum_start='zero', vector_scale='norm'),
                                   init, grads)
  torch_trajectories.assert_trajectories_match(ours, reference)


def test_one_moment_and_a_scalar_per_block():
  # The paper's memory claim: SGD-SaI stores one moment (Adam stores two).
  params = {'w': jnp.ones((64, 32)), 'b': jnp.ones(32), 'conv': jnp.ones((3, 3, 4, 8))}
  n_bytes = optim.tree_bytes(params)
  ours = optim.tree_bytes(sgd_sai(1e-2).init(params))
  adam = optim.tree_bytes(optax.adam(1e-3).init(params))
  assert ours == n_bytes + 4 * 3 + 4  # momentum + one float32 g-SNR per leaf + the step count
  assert adam == 2 * n_bytes + 4


def test_gsnr_is_computed_once_inside_jit():
  tx = scale_by_sgd_sai()
  g1 = {'w': jnp.arange(6.0).reshape(2, 3), 'b': jnp.array([1.0, -1.0])}
  update = jax.jit(tx.update)
  _, state = update(g1, tx.init(g1))
  first = state.gsnr
  np.testing.assert_allclose(first['w'], np.linalg.norm(np.arange(6.0)) / (np.std(np.arange(6.0), ddof=1) + 1e-8),
                             rtol=1e-6)
  for scale in (100.0, -3.0, 1e-3):
    _, state = update(jax.tree.map(lambda x: scale * x + 1.0, g1), state)
    jax.tree.map(np.testing.assert_array_equal, state.gsnr, first)
  # Later steps do not evaluate the g-SNR branch: it sits under a lax.cond on the step count.
  assert 'cond' in str(jax.make_jaxpr(tx.update)(g1, state))


def test_normalize_divides_by_the_largest_gsnr_and_degenerate_blocks():
  g = {'w': jnp.array([[1.0, 2.0], [3.0, 4.0]]), 'b': jnp.array([1.0, 1.0, 1.0]), 's': jnp.asarray(5.0)}
  _, state = scale_by_sgd_sai().update(g, scale_by_sgd_sai().init(g))
  assert float(state.gsnr['b']) == 1.0 and float(state.gsnr['s']) == 1.0  # no spread: plain momentum
  _, official = scale_by_sgd_sai(degenerate_gsnr=None).update(g, scale_by_sgd_sai().init(g))
  np.testing.assert_allclose(official.gsnr['b'], np.sqrt(3.0) / 1e-8, rtol=1e-6)  # ||g|| / eps
  _, normed = scale_by_sgd_sai(normalize=True).update(g, scale_by_sgd_sai().init(g))
  largest = max(float(x) for x in jax.tree.leaves(state.gsnr))
  for k in g:
    np.testing.assert_allclose(normed.gsnr[k], state.gsnr[k] / largest, rtol=1e-6)


@pytest.mark.parametrize('kwargs, name', [({'momentum': 1.0}, 'momentum'), ({'eps': -1.0}, 'eps'),
                                          ({'weight_decay': -0.1}, 'weight_decay'),
                                          ({'degenerate_gsnr': float('nan')}, 'degenerate_gsnr')])
def test_bad_hyperparameters_are_named(kwargs, name):
  with pytest.raises(ValueError, match=name):
    sgd_sai(1e-2, **kwargs)


def test_mu_dtype_and_bf16_parameters():
  params = {'w': jnp.ones((4, 3), jnp.bfloat16) * jnp.arange(3), 'b': jnp.arange(3.0)}
  tx = sgd_sai(1e-2, mu_dtype=jnp.bfloat16)
  state = tx.init(params)
  updates, state = tx.update(params, state, params)
  assert updates['w'].dtype == jnp.bfloat16 and updates['b'].dtype == jnp.float32
  assert state[0].mu['b'].dtype == jnp.bfloat16 and state[0].gsnr['w'].dtype == jnp.float32
