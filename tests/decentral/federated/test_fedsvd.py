"""FedSVD (decentral/federated/fedsvd.py): the re-factorisation keeps B A and makes A orthonormal (QR route = the
code's SVD of the product), a first DP round on the engine against a numpy transcription (per-example clipping of
the B-gradients, weighted mean of B, SVD), the DP noise of the B-only step and its calibration through
optim.privacy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from decentral.federated import fedsvd
from optim import privacy


@pytest.mark.parametrize('method', ['qr', 'svd'])
def test_refactorize_keeps_the_product_and_orthonormalises_a(x64, method):
  rng = np.random.default_rng(0)
  b, a = jnp.asarray(rng.normal(size=(7, 3))), jnp.asarray(rng.normal(size=(3, 5)))
  b2, a2 = fedsvd.refactorize(b, a, method=method)
  np.testing.assert_allclose(b2 @ a2, b @ a, atol=1e-12)
  np.testing.assert_allclose(a2 @ a2.T, np.eye(3), atol=1e-12)
  u, s, vt = np.linalg.svd(np.asarray(b @ a), full_matrices=False)
  np.testing.assert_allclose(np.linalg.norm(b2, axis=0), s[:3], rtol=1e-10)  # B = U_r S_r: column norms S
  np.testing.assert_allclose(a2.T @ a2, vt[:3].T @ vt[:3], atol=1e-10)       # A spans V_r (up to signs)
  # ... which is the row space of the old A: B of full rank r keeps span(A) (the module's note).
  np.testing.assert_allclose(a2.T @ a2, np.asarray(a.T @ np.linalg.solve(a @ a.T, a)), atol=1e-10)


def test_refactorize_edge_cases(x64):
  a = jnp.asarray(np.random.default_rng(1).normal(size=(2, 4)))
  b2, a2 = fedsvd.refactorize(jnp.zeros((3, 2)), a)  # the first round of FFA-style init: B = 0
  np.testing.assert_allclose(b2, 0.0, atol=1e-14)
  np.testing.assert_allclose(a2 @ a2.T, np.eye(2), atol=1e-12)
  tree = {'q': fedsvd.LoRA(jnp.ones((3, 2)), a), 'bias': jnp.ones(3)}
  out = fedsvd.refactorize_tree(tree)
  np.testing.assert_allclose(fedsvd.adapter_weight(out['q']), fedsvd.adapter_weight(tree['q']), atol=1e-12)
  np.testing.assert_allclose(out['bias'], 1.0)
  with pytest.raises(ValueError, match='refactorize: b is'):
    fedsvd.refactorize(jnp.ones((3, 2)), jnp.ones((3, 4)))
  with pytest.raises(ValueError, match='must not exceed'):
    fedsvd.refactorize(jnp.ones((2, 3)), jnp.ones((3, 4)))
  assert [bool(fedsvd.refactorize_due(t, period=2, warmup=2)) for t in range(6)] == [False] * 3 + [True, False, True]
  assert not fedsvd.refactorize_due(5, period=0)


# ---------------------------------------------------------------------------------------------- one round, by hand

D_IN, D_OUT, R, LR, CLIP, STEPS = 4, 3, 2, 0.5, 0.3, 2
RNG = np.random.default_rng(2)
W0 = RNG.normal(size=(D_OUT, D_IN))
XS, YS = RNG.normal(size=(5, D_IN)), RNG.normal(size=(5, D_OUT))
COUNTS = (3, 2)


def _loss(params, batch):  # per-example 0.5 ||(W0 + B A) x - y||^2
  w = jnp.asarray(W0) + fedsvd.adapter_weight(params['q'])
  return 0.5 * jnp.sum((batch['x'] @ w.T - batch['y']) ** 2, axis=-1)


def _oracle_round(b, a, server):
  bs, weights, start = [], [], 0
  for n in COUNTS:
    x, y = XS[start:start + n], YS[start:start + n]
    start += n
    bi = b.copy()
    for _ in range(STEPS):  # q = 1: every row each step, divisor n; sigma = 0
      total = np.zeros_like(bi)
      for xj, yj in zip(x, y):
        r = (W0 + bi @ a) @ xj - yj
        g = np.outer(r, a @ xj)                       # d loss / d B, A frozen
        total += g * min(1.0, CLIP / np.linalg.norm(g))
      bi = bi - LR * total / n
    bs.append(bi)
    weights.append(n)
  b_mean = np.average(bs, axis=0, weights=weights)
  if server == 'ffa':
    return b_mean, a
  u, s, vt = np.linalg.svd(b_mean @ a, full_matrices=False)
  return u[:, :R] * s[:R], vt[:R]


def test_first_round_matches_a_hand_computation(x64):
  from decentral.federated import partitions, rounds, sampling
  data = partitions.pad({'x': XS, 'y': YS}, [np.arange(3), np.arange(3, 5)])
  lora = fedsvd.init_lora(jax.random.key(0), D_OUT, D_IN, R, jnp.float64)
  lora = lora._replace(b=0.1 * jnp.ones((D_OUT, R)))  # B != 0 so that the first round's SVD is not trivial
  algo = fedsvd.fedsvd_algorithm('fedsvd', l2_norm_clip=CLIP, noise_multiplier=0.0, sampling_rate=1.0)
  fed = rounds.Federated(_loss, data, local=rounds.Local(optax.sgd(LR), steps=STEPS), sampler=sampling.everyone(2),
                         algorithm=algo)
  state, metrics = fed.round(fed.init({'q': lora}, jax.random.key(1)))
  new = state.params['q']
  b, a = _oracle_round(np.asarray(lora.b), np.asarray(lora.a), 'fedsvd')
  # Float32 aggregation weights in the engine: ~1e-8.
  np.testing.assert_allclose(new.b @ new.a, b @ a, rtol=1e-7, atol=1e-9)
  np.testing.assert_allclose(new.a @ new.a.T, np.eye(R), atol=1e-12)
  np.testing.assert_allclose(np.abs(new.a), np.abs(a), atol=1e-6)  # V_r^T up to the signs of rows
  assert list(np.asarray(metrics.sent)) == [D_OUT * R * 8] * 2  # B only
  b_ffa, a_ffa = _oracle_round(np.asarray(lora.b), np.asarray(lora.a), 'ffa')
  np.testing.assert_allclose(b_ffa @ a_ffa, b @ a, atol=1e-12)  # round 1: the same model as FFA-LoRA


# ---------------------------------------------------------------------------------------------- privacy


def test_dp_noise_is_calibrated_and_lands_on_b_only(x64):
  sigma, q, n = 1.3, 0.5, 6
  params = {'q': fedsvd.LoRA(jnp.zeros((1000, 2)), jnp.ones((2, 50))), 'head': jnp.ones(3)}
  zeros = jax.tree.map(lambda p: jnp.zeros((n,) + p.shape), params)  # six examples with zero gradients
  trainable = fedsvd.trainable_mask(params, 'ffa')
  private = jax.jit(lambda z, k: fedsvd.private_gradient(z, trainable, jnp.ones(n, bool), k, l2_norm_clip=CLIP,
                                                         noise_multiplier=sigma, sampling_rate=q))
  g = private(zeros, jax.random.key(3))
  np.testing.assert_allclose(g['q'].a, 0.0)
  np.testing.assert_allclose(g['head'], 0.0)
  want = sigma * CLIP / (q * n)  # the noise std on the clipped sum over the expected batch q n
  assert abs(float(jnp.std(g['q'].b)) - want) < 0.05 * want  # 2000 draws: ~1.6% standard error
  assert jax.tree.leaves(fedsvd.trainable_mask(params, 'fedavg', train_others=True)) == [True, True, True]


def test_noise_multiplier_through_optim_privacy(monkeypatch):
  kw = dict(sampling_rate=0.05, local_steps=5, rounds=20, participation=0.5)
  sigma = fedsvd.noise_multiplier(6.0, 1e-5, **kw)
  assert abs(privacy.epsilon(sigma, 0.05, 100, 1e-5) - 6.0) < 1e-2   # every round counted: 5 x 20 steps
  calls = []
  monkeypatch.setattr(fedsvd.accounting, 'noise_multiplier_for', lambda *args, **kwargs: calls.append(args) or 1.0)
  fedsvd.noise_multiplier(6.0, 1e-5, accounting_rule='expected', **kw)
  assert calls == [(6.0, 0.05, 50, 1e-5)]  # the code's n_iter x n_rnds x frac
