"""Bristle-style integration: the prioritiser and the class-wise integrator by hand (numpy, float64), non-finite
heads dropped, exploration draws from the far heads; on the worker axis, peer by peer as the integration says."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from decentral import axis
from decentral.p2p import bristle, topology
from decentral.robust import attacks as attack_fns


def _problem(rng, m=6, d=4, c=3, v=30):
  feats = rng.normal(size=(v, d))
  labels = rng.integers(0, c, size=v)
  own = {'kernel': rng.normal(size=(d, c)), 'bias': rng.normal(size=c)}
  heads = {'kernel': own['kernel'][None] + rng.normal(size=(m, d, c)) * np.arange(1, m + 1)[:, None, None] * 0.3,
           'bias': own['bias'][None] + rng.normal(size=(m, c)) * 0.3}
  return feats, labels, own, heads


def test_integration_by_hand(x64):
  rng = np.random.default_rng(0)
  feats, labels, own, heads = _problem(rng)
  exploit, tol = 3, 0.05
  dist = ((heads['kernel'] - own['kernel']) ** 2).sum((1, 2)) + ((heads['bias'] - own['bias']) ** 2).sum(1)
  chosen = np.argsort(dist, kind='stable')[:exploit]
  def scores(k, b):
    pred = np.argmax(feats @ k + b, 1)
    recall = np.array([np.mean(pred[labels == c] == c) if np.any(labels == c) else 0.0 for c in range(3)])
    return np.mean(pred == labels), recall

  base_acc, base_recall = scores(own['kernel'], own['bias'])
  kernel, bias = own['kernel'].copy(), own['bias'].copy()
  for c in range(3):
    weights, cols_k, cols_b = [base_recall[c]], [own['kernel'][:, c]], [own['bias'][c]]
    for j in chosen:
      k, b = own['kernel'].copy(), own['bias'].copy()
      k[:, c], b[c] = heads['kernel'][j][:, c], heads['bias'][j][c]
      a, r = scores(k, b)
      if a >= base_acc - tol and r[c] >= base_recall[c] - tol and r[c] > 0:
        weights.append(r[c])
        cols_k.append(heads['kernel'][j][:, c])
        cols_b.append(heads['bias'][j][c])
    w = np.asarray(weights)
    if w.sum() == 0:
      continue
    kernel[:, c] = np.average(np.stack(cols_k), axis=0, weights=w)
    bias[c] = np.average(cols_b, weights=w)
  as_j = lambda t: jax.tree.map(jnp.asarray, t)
  integrate = jax.jit(functools.partial(bristle.bristle_integrate, exploit=exploit, tolerance=tol))
  out = integrate(as_j(own), as_j(heads), jnp.asarray(feats), jnp.asarray(labels))
  np.testing.assert_allclose(out['kernel'], kernel, rtol=1e-13)
  np.testing.assert_allclose(out['bias'], bias, rtol=1e-13)
  assert not np.allclose(kernel, own['kernel'])  # something was integrated


def test_byzantine_heads_are_dropped_class_by_class():
  rng = np.random.default_rng(1)
  feats, _, own, heads = _problem(rng, m=4)
  labels = np.argmax(feats @ own['kernel'] + own['bias'], 1)  # the peer's own head is right on its test set
  heads['kernel'][1] = -5.0 * heads['kernel'][1]  # sign flipped and scaled
  heads['kernel'][2] = np.nan
  heads['bias'][3] = heads['bias'][3] + np.array([50.0, 0.0, 0.0])  # always votes class 0
  as_j = lambda t: jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), t)
  acc, _ = jax.jit(bristle.class_scores)(as_j(own), as_j(heads), jnp.asarray(feats, jnp.float32), jnp.asarray(labels))
  assert np.all(np.asarray(acc)[2] < 1.0) and np.asarray(acc)[3, 0] < 1.0  # the peer's own accuracy is 1
  integrate = jax.jit(functools.partial(bristle.bristle_integrate, exploit=4))
  out = integrate(as_j(own), as_j(heads), jnp.asarray(feats, jnp.float32), jnp.asarray(labels))
  assert np.all(np.isfinite(out['kernel'])) and np.all(np.isfinite(out['bias']))


def test_exploration_adds_far_heads():
  rng = np.random.default_rng(2)
  _, _, own, heads = _problem(rng, m=8)
  as_j = lambda t: jax.tree.map(jnp.asarray, t)
  near = np.asarray(bristle.prioritise(as_j(own), as_j(heads), exploit=2))
  np.testing.assert_array_equal(np.flatnonzero(near), [0, 1])  # heads drift further with their index
  both = np.asarray(bristle.prioritise(as_j(own), as_j(heads), exploit=2, explore=3, key=jax.random.key(0)))
  assert both.sum() == 5 and both[:2].all()


def test_absent_rows_are_never_chosen():
  rng = np.random.default_rng(3)
  _, _, own, heads = _problem(rng, m=5)
  as_j = lambda t: jax.tree.map(jnp.asarray, t)
  present = jnp.asarray([True, False, True, False, True])
  chosen = np.asarray(bristle.prioritise(as_j(own), as_j(heads), exploit=5, explore=2, key=jax.random.key(0),
                                         present=present))
  np.testing.assert_array_equal(chosen, np.asarray(present))


def _peers(rng, n=5, d=4, c=3, v=30):
  heads = {'kernel': rng.normal(size=(n, d, c)), 'bias': rng.normal(size=(n, c)) * 0.3}
  feats = rng.normal(size=(n, v, d))
  labels = rng.integers(0, c, size=(n, v))
  return heads, feats, labels


@pytest.mark.parametrize('graph', ['complete', 'ring'])
def test_worker_axis_equals_integration_peer_by_peer(graph, x64):
  """bristle_gossip of zero updates, the last peer sign flipping: peer i integrates, with bristle_integrate, the heads
  its neighbours send (all others on the complete graph, i - 1 and i + 1 on the ring), computed here by hand; a
  leaf outside the head only takes its local step."""
  n, f = 5, 1
  rng = np.random.default_rng(4)
  heads, feats, labels = _peers(rng, n)
  extra = rng.normal(size=(n, 2))
  topo = None if graph == 'complete' else topology.ring(n)
  tx = bristle.bristle_gossip(axis_name='w', exploit=2, tolerance=0.05, topology=topo, kernel=('head', 'kernel'),
                              bias=('head', 'bias'), f=f, attack=attack_fns.sign_flipping)

  def step(p, u, x, y):
    out, _ = tx.update(u, tx.init(p), p, features=x, labels=y)
    return jax.tree.map(jnp.add, p, out)

  params = {'head': jax.tree.map(jnp.asarray, heads), 'extractor': jnp.asarray(extra)}
  updates = {'head': jax.tree.map(jnp.zeros_like, params['head']), 'extractor': jnp.ones((n, 2))}
  got = axis.run(step, n, axis_name='w')(params, updates, jnp.asarray(feats), jnp.asarray(labels))
  sent = {k: v.copy() for k, v in heads.items()}
  for k in sent:
    sent[k][n - f:] = -heads[k][:n - f].mean(0)  # sign flipping: minus the honest mean
  integrate = jax.jit(functools.partial(bristle.bristle_integrate, exploit=2, tolerance=0.05))
  for i in range(n):
    hear = [j for j in range(n) if j != i] if graph == 'complete' else sorted({(i - 1) % n, (i + 1) % n})
    own = {k: jnp.asarray(v[i]) for k, v in heads.items()}
    received = {k: jnp.asarray(v[hear]) for k, v in sent.items()}
    want = integrate(own, received, jnp.asarray(feats[i]), jnp.asarray(labels[i]))
    np.testing.assert_allclose(got['head']['kernel'][i], want['kernel'], rtol=1e-13)
    np.testing.assert_allclose(got['head']['bias'][i], want['bias'], rtol=1e-13)
  np.testing.assert_allclose(got['extractor'], extra + 1.0, rtol=1e-14)


def test_dsgd_names_itself_in_bad_arguments():
  with pytest.raises(ValueError, match='bristle_dsgd: bristle_gossip: tolerance'):
    bristle.bristle_dsgd(0.1, axis_name='w', exploit=1, tolerance=float('nan'))
  with pytest.raises(ValueError, match='bristle_dsgd: learning_rate'):
    bristle.bristle_dsgd(-0.1, axis_name='w', exploit=1)
