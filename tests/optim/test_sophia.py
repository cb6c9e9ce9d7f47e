"""Sophia-G and Sophia-H: Algorithm 3 by hand, the estimators' expectations, the authors' trajectories.

Fixtures (tests/optim/fixtures/README.md): ``sophia_g_official.npz`` from the authors' ``SophiaG`` and
``sophia_h_pytorch_optimizer.npz`` from pytorch-optimizer's ``SophiaH``, both float64 on a tiny softmax MLP.
"""

from __future__ import annotations

import os

import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import digits
from optim.optimizers import sophia
from optim.primitives import curvature

FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures')
NAMES = ('w1', 'b1', 'w2', 'b2')


def _mlp(p, x):
  """The fixtures' model, torch layout: logits = tanh(x W1^T + b1) W2^T + b2."""
  return jnp.tanh(x @ p['w1'].T + p['b1']) @ p['w2'].T + p['b2']


def _ce(logits, y):
  return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def _load(name):
  d = np.load(os.path.join(FIXTURES, name))
  init = {n: jnp.asarray(d['init_' + n]) for n in NAMES}
  traj = [{n: d['traj_' + n][t] for n in NAMES} for t in range(d['traj_w1'].shape[0])]
  return d, init, traj


def _assert_trajectory(ours, theirs, rtol=1e-10):
  for t, (a, b) in enumerate(zip(ours, theirs)):
    for n in NAMES:
      scale = np.max(np.abs(b[n]))
      np.testing.assert_allclose(a[n], b[n], rtol=0, atol=rtol * scale, err_msg=f'step {t + 1}, {n}')


def _run(step, state, params, steps):
  """The parameters after each of ``steps`` jitted steps ``step(params, state, t)``."""
  out = []
  for t in range(steps):
    params, state = step(params, state, t)
    out.append(params)
  return out



def test_first_steps_by_hand(x64):
  # A separable quadratic: H = diag(a), so Hutchinson with Rademacher probes is exact (u * (a u) = a) and
  # Algorithm 3 can be followed by hand. k = 3: estimates before steps 1, 4, 7.
  a = np.array([0.5, 2.0, 8.0, 0.1, 30.0])
  b = np.array([1.0, -2.0, 0.5, 0.3, -4.0])
  loss = lambda p: 0.5 * jnp.sum(a * p ** 2) + jnp.sum(b * p)
  lr, b1, b2, gamma, eps, wd, k = 0.1, 0.9, 0.5, 1.0, 1e-12, 0.01, 3
  tx = sophia.sophia_h(lr, b1=b1, b2=b2, gamma=gamma, eps=eps, weight_decay=wd, update_interval=k,
                       distribution='rademacher')
  theta = jnp.array([1.0, 1.0, -1.0, 2.0, 0.5])
  state = tx.init(theta)
  step = jax.jit(lambda p, s: tx.update(jax.grad(loss)(p), s, p, obj_fn=loss))
  th, m, h = np.asarray(theta), np.zeros(5), np.zeros(5)
  unclipped = 0
  for t in range(1, 8):
    updates, state = step(theta, state)
    theta = optax.apply_updates(theta, updates)
    g = a * th + b
    m = b1 * m + (1 - b1) * g
    if t % k == 1:
      h = b2 * h + (1 - b2) * a
    ratio = m / np.maximum(gamma * h, eps)
    unclipped += np.sum(np.abs(ratio) < 1)
    th = th - lr * (np.clip(ratio, -1, 1) + wd * th)
    np.testing.assert_allclose(theta, th, rtol=1e-13, err_msg=f'step {t}')
  assert 0 < unclipped < 35  # both branches of the clip are exercised


def test_gauss_newton_bartlett_by_hand(x64):
  # Linear softmax model z = X W + c with given labels: g_hat = X^T (P - Y) / n, and the estimate is n g_hat^2.
  rng = np.random.default_rng(0)
  x, w, c = rng.normal(size=(7, 4)), rng.normal(size=(4, 3)), rng.normal(size=3)
  labels = rng.integers(0, 3, size=7)
  logits_fn = lambda p: jnp.asarray(x) @ p['w'] + p['c']
  est = sophia.gauss_newton_bartlett(logits_fn, {'w': jnp.asarray(w), 'c': jnp.asarray(c)},
                                     labels=jnp.asarray(labels))
  z = x @ w + c
  probs = np.exp(z - z.max(1, keepdims=True))
  probs /= probs.sum(1, keepdims=True)
  residual = (probs - np.eye(3)[labels]) / 7
  np.testing.assert_allclose(est['w'], 7 * (x.T @ residual) ** 2, rtol=1e-12)
  np.testing.assert_allclose(est['c'], 7 * residual.sum(0) ** 2, rtol=1e-12)


@pytest.mark.parametrize('fraction', [0.5, 2.0])
def test_gauss_newton_bartlett_clips_g_hat_as_the_authors_loop(x64, fraction):
  # train_sophiag.py: backward on the sampled labels, clip_grad_norm_(params, grad_clip), then h += g^2 terms.
  # By hand: torch's clip_grad_norm_ scales every gradient by min(1, max_norm / (total_norm + 1e-6)).
  rng = np.random.default_rng(1)
  x, w, c = rng.normal(size=(6, 4)), rng.normal(size=(4, 3)), rng.normal(size=3)
  labels = rng.integers(0, 3, size=6)
  z = x @ w + c
  probs = np.exp(z - z.max(1, keepdims=True))
  probs /= probs.sum(1, keepdims=True)
  residual = (probs - np.eye(3)[labels]) / 6
  g_w, g_c = x.T @ residual, residual.sum(0)
  norm = np.sqrt(np.sum(g_w ** 2) + np.sum(g_c ** 2))
  max_norm = fraction * norm
  scale = min(1.0, max_norm / (norm + 1e-6))
  est = sophia.gauss_newton_bartlett(lambda p: jnp.asarray(x) @ p['w'] + p['c'],
                                     {'w': jnp.asarray(w), 'c': jnp.asarray(c)}, labels=jnp.asarray(labels),
                                     clip_norm=max_norm)
  np.testing.assert_allclose(est['w'], 6 * (scale * g_w) ** 2, rtol=1e-12)
  np.testing.assert_allclose(est['c'], 6 * (scale * g_c) ** 2, rtol=1e-12)
  assert (scale < 1) == (fraction < 1)


def test_sophia_g_estimator_clip_norm_reaches_the_curvature_ema(x64):
  x, w = jnp.eye(4), jnp.asarray(np.random.default_rng(2).normal(size=(4, 3)))
  logits_fn = lambda v: x @ v
  grads = jnp.ones_like(w)
  plain, clipped = sophia.sophia_g(0.1), sophia.sophia_g(0.1, estimator_clip_norm=1e-3)
  _, s_plain = plain.update(grads, plain.init(w), w, logits_fn=logits_fn)
  _, s_clip = clipped.update(grads, clipped.init(w), w, logits_fn=logits_fn)
  h_plain, h_clip = s_plain[0].hessian, s_clip[0].hessian  # same key, same sampled labels
  g_norm = np.sqrt(np.sum(np.asarray(h_plain) / (1 - 0.99) / 4))  # h = (1 - b2) B g_hat^2 after one refresh
  np.testing.assert_allclose(h_clip, h_plain * (1e-3 / (g_norm + 1e-6)) ** 2, rtol=1e-9)
  with pytest.raises(ValueError, match='clip_norm'):
    sophia.sophia_g(0.1, estimator_clip_norm=0.0)


def _tiny_problem(seed=0):
  rng = np.random.default_rng(seed)
  params = {'w1': jnp.asarray(0.8 * rng.normal(size=(4, 3))), 'b1': jnp.asarray(0.1 * rng.normal(size=4)),
            'w2': jnp.asarray(0.8 * rng.normal(size=(3, 4))), 'b2': jnp.zeros(3)}
  x, y = jnp.asarray(rng.normal(size=(5, 3))), jnp.asarray(rng.integers(0, 3, size=5))
  return params, x, y


def _hessian_diagonal(loss_fn, params):
  return jax.jit(lambda p: jnp.diag(curvature.dense_matrix(curvature.hessian_matvec(loss_fn, p), p)))(params)


def _z_scores(samples, exact):
  flat = jax.vmap(lambda s: ravel_pytree(s)[0])(samples)
  exact = ravel_pytree(exact)[0]
  flat, exact = np.asarray(flat), np.asarray(exact)
  mean, stderr = flat.mean(0), flat.std(0, ddof=1) / np.sqrt(flat.shape[0])
  return np.abs(mean - exact) / stderr, mean, exact


def test_gauss_newton_bartlett_is_unbiased_for_the_gauss_newton_diagonal(x64):
  params, x, y = _tiny_problem()
  logits_fn = lambda p: _mlp(p, x)
  loss_fn = lambda p: _ce(logits_fn(p), y)
  gn = jax.jit(lambda p: curvature.dense_matrix(curvature.gauss_newton_matvec(_mlp, _ce, p, x, y), p))(params)
  exact = ravel_pytree(params)[1](jnp.diag(gn))
  keys = jax.random.split(jax.random.key(0), 20000)
  samples = jax.jit(jax.vmap(lambda k: sophia.gauss_newton_bartlett(logits_fn, params, k)))(keys)
  z, mean, exact_flat = _z_scores(samples, exact)
  # 35 entries: a couple beyond 3 standard errors happen by chance, none beyond 4.5.
  assert np.mean(z < 3) >= 0.9 and z.max() < 4.5, z
  # The test can fail: the Hessian diagonal (which GNB does not estimate) is far outside these bounds.
  hessian = _hessian_diagonal(loss_fn, params)
  assert np.max(np.abs(hessian - exact_flat)) > 10 * np.max(np.abs(mean - exact_flat))


def test_hutchinson_estimator_is_unbiased_for_the_hessian_diagonal(x64):
  params, x, y = _tiny_problem(1)
  loss_fn = lambda p: _ce(_mlp(p, x), y)
  exact = _hessian_diagonal(loss_fn, params)
  est = sophia.hutchinson_estimator(distribution='gaussian', seed=3)
  state = est.init(params)
  # The i-th estimate uses fold_in(key, i): draw 4000 of them at once by vmapping over the count.
  draw = lambda i: est.update(None, state._replace(count=i), params, obj_fn=loss_fn)[0]
  samples = jax.jit(jax.vmap(draw))(jnp.arange(4000))
  z, _, _ = _z_scores(samples, ravel_pytree(params)[1](exact))
  assert np.mean(z < 3) >= 0.9 and z.max() < 4.5, z


def test_matches_the_authors_sophia_g(x64):
  d, params, theirs = _load('sophia_g_official.npz')
  k = int(d['interval'])
  x, y, labels = jnp.asarray(d['x']), jnp.asarray(d['y']), jnp.asarray(d['labels'])
  # The authors' SophiaG: rho * bs * EMA(g_hat^2) + 1e-15 in the denominator, wd as theta(1 - lr wd); their loop
  # estimates after steps k, 2k, ... (estimate_schedule='code'), on that step's batch with the sampled labels
  # replayed here (labels=...): ours at the start of steps k+1, 2k+1, ..., the same point, given the same batch.
  tx = sophia.sophia_g(float(d['lr']), b1=float(d['b1']), b2=float(d['b2']), gamma=float(d['rho']), eps=1e-15,
                       weight_decay=float(d['weight_decay']), update_interval=k, estimate_schedule='code')

  @jax.jit
  def step(params, state, t):
    grads = jax.grad(lambda p: _ce(_mlp(p, x[t]), y[t]))(params)
    previous_batch = lambda q: _mlp(q, x[t - 1])
    updates, state = tx.update(grads, state, params, logits_fn=previous_batch, labels=labels[t // k - 1])
    return optax.apply_updates(params, updates), state

  _assert_trajectory(_run(step, tx.init(params), params, len(theirs)), theirs)


def test_matches_pytorch_optimizer_sophia_h(x64):
  d, params, theirs = _load('sophia_h_pytorch_optimizer.npz')
  k, p = int(d['interval']), float(d['p'])
  x, y = jnp.asarray(d['x']), jnp.asarray(d['y'])
  probes = {n: jnp.asarray(d['probe_' + n]) for n in NAMES}
  # SophiaH(lr, p, eps, weight_decay) = ours with eta = lr p, gamma = p, eps = p eps, wd = lr wd / eta.
  # Its probes replayed (probes=...); its estimates come before steps 1, k+1, ..., the paper's schedule.
  lr = float(d['lr']) * p
  tx = sophia.sophia_h(lr, b1=float(d['b1']), b2=float(d['b2']), gamma=p, eps=p * float(d['eps']),
                       weight_decay=float(d['weight_decay']) * float(d['lr']) / lr, update_interval=k)

  @jax.jit
  def step(params, state, t):
    loss = lambda q: _ce(_mlp(q, x[t]), y[t])
    u = {n: probes[n][t // k] for n in NAMES}
    updates, state = tx.update(jax.grad(loss)(params), state, params, obj_fn=loss, probes=u)
    return optax.apply_updates(params, updates), state

  _assert_trajectory(_run(step, tx.init(params), params, len(theirs)), theirs)


def test_estimator_runs_only_every_k_steps():
  # Off-steps must not run the Hessian-vector product: count the estimator's executions at run time.
  calls, inner = [], sophia.hutchinson_estimator()

  def counting_update(updates, state, params=None, **oracles):
    jax.debug.callback(lambda: calls.append(1))
    return inner.update(updates, state, params, **oracles)

  tx = sophia.scale_by_sophia(optax.GradientTransformationExtraArgs(inner.init, counting_update),
                              update_interval=4)
  params = jnp.ones(3)
  loss = lambda p: jnp.sum(jnp.cosh(p))
  step = jax.jit(lambda p, s: tx.update(jax.grad(loss)(p), s, p, obj_fn=loss))
  state = tx.init(params)
  for _ in range(10):
    _, state = step(params, state)
  jax.effects_barrier()
  assert len(calls) == 3  # steps 1, 5, 9


def test_sophia_g_needs_logits_and_falls_back_with_a_loss():
  params, x, y = _tiny_problem()
  logits_fn = lambda p: _mlp(p, x)
  loss_fn = lambda p: _ce(logits_fn(p), y)
  tx = sophia.sophia_g(0.01)
  state = tx.init(params)
  grads = jax.grad(loss_fn)(params)
  with pytest.raises(ValueError, match='logits_fn'):
    jax.eval_shape(lambda: tx.update(grads, state, params))
  with pytest.warns(UserWarning, match='Hutchinson'):
    jax.eval_shape(lambda: tx.update(grads, state, params, obj_fn=loss_fn))
  _, new = jax.jit(lambda p, s: tx.update(grads, s, p, logits_fn=logits_fn))(params, state)
  assert jax.tree.leaves(new[0].hessian)[0].sum() > 0  # GNB estimates are non-negative and here non-zero


@pytest.mark.parametrize('kwargs, name', [({'gamma': -1.0}, 'gamma'), ({'b1': 1.0}, 'b1'), ({'b2': -0.1}, 'b2'),
                                          ({'update_interval': 0}, 'update_interval'),
                                          ({'eps': float('nan')}, 'eps'), ({'weight_decay': -1.0}, 'weight_decay')])
def test_bad_hyperparameters_are_named(kwargs, name):
  with pytest.raises(ValueError, match=name):
    sophia.sophia_h(0.1, **kwargs)
  with pytest.raises(ValueError, match=name):
    sophia.sophia_g(0.1, **kwargs)


@pytest.mark.parametrize('variant', ['sophia_g', 'sophia_h'])
def test_trains_an_mlp_on_digits(variant):
  tx = getattr(sophia, variant)(3e-3, weight_decay=0.0)
  oracles = lambda loss_fn, logits_fn, **_: {'logits_fn': logits_fn} if variant == 'sophia_g' else {'obj_fn': loss_fn}
  fit = digits.fit(tx, oracles=oracles)
  assert fit.train_loss < 0.25
  assert fit.test_accuracy > 0.93


def test_hutchinson_probes_by_hand(x64):
  # Probe i is drawn leaf by leaf from fold_in(key, i); the estimate is the mean of u_i * (H u_i) with H dense.
  params, x, y = _tiny_problem(2)
  loss_fn = lambda p: _ce(_mlp(p, x), y)
  flat, unravel = ravel_pytree(params)
  hessian = np.asarray(jax.jit(jax.hessian(lambda v: loss_fn(unravel(v))))(flat))
  key = jax.random.key(5)
  estimate = jax.jit(sophia.hutchinson_diagonal, static_argnums=(0, 3))
  leaves = jax.tree.leaves(params)  # the order of ravel_pytree

  @jax.jit
  def probe(i):  # leaf j drawn from split(fold_in(key, i))[j], in the leaf's shape
    keys = jax.random.split(jax.random.fold_in(key, i), len(leaves))
    return jnp.concatenate([jax.random.normal(k, v.shape, v.dtype).ravel() for k, v in zip(keys, leaves)])

  for num_probes in (1, 3):
    expected = np.zeros(flat.size)
    for i in range(num_probes):
      u = np.asarray(probe(i))
      expected += u * (hessian @ u) / num_probes
    ours = estimate(loss_fn, params, key, num_probes)
    np.testing.assert_allclose(ravel_pytree(ours)[0], expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('variant', ['sophia_h', 'sophia_g'])
def test_refresh_never_ravels_the_parameters(variant):
  # The refresh works leaf by leaf: a raveled copy of the tree (a concatenate of every leaf) would double its
  # memory traffic; on a 10M-parameter tree it made the refresh step 5x slower than optax.contrib.sophia's.
  params = {'w': jnp.ones((5, 3)), 'b': jnp.zeros(3), 'v': jnp.ones((3, 2))}
  logits_fn = lambda p: jnp.tanh(jnp.ones((4, 5)) @ p['w'] + p['b']) @ p['v']
  loss_fn = lambda p: _ce(logits_fn(p), jnp.array([0, 1, 1, 0]))
  tx = getattr(sophia, variant)(1e-2)
  oracles = dict(obj_fn=loss_fn) if variant == 'sophia_h' else dict(logits_fn=logits_fn)
  jaxpr = jax.make_jaxpr(lambda p, s: tx.update(jax.grad(loss_fn)(p), s, p, **oracles))(params, tx.init(params))
  primitives = _primitives(jaxpr.jaxpr)
  assert 'cond' in primitives and 'dot_general' in primitives  # the refresh's branches are searched too
  assert 'concatenate' not in primitives


def _primitives(jaxpr):
  """Names of the primitives of a jaxpr and of every jaxpr nested in it (cond branches, jit, loops)."""
  names = set()
  for eqn in jaxpr.eqns:
    names.add(eqn.primitive.name)
    for value in eqn.params.values():
      for sub in value if isinstance(value, (tuple, list)) else (value,):
        sub = getattr(sub, 'jaxpr', sub)  # a ClosedJaxpr holds its jaxpr
        if hasattr(sub, 'eqns'):
          names |= _primitives(sub)
  return names
