"""DiLoCo, Streaming DiLoCo and SparseLoCo: reductions to simpler methods, torchft's golden trajectories, the
error-feedback invariant, exact bytes, and vmap = shard_map = pmap."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import decentral
from decentral import axis
from decentral import compression as comp
from decentral import local_sgd as ls

N = 8
FIXTURES = os.path.join(os.path.dirname(__file__), 'fixtures')


def _problem(n, d=3, m=6, seed=0):
  """Per-worker logistic regression data and a loss touching a vector and a scalar leaf."""
  k1, k2 = jax.random.split(jax.random.key(seed))
  x = jax.random.normal(k1, (n, m, d))
  y = (jax.random.uniform(k2, (n, m)) < 0.5).astype(jnp.float32)

  def loss(p, xi, yi):
    logits = xi @ p['w'] + p['b']
    return jnp.mean(jax.nn.softplus(logits) - yi * logits)

  params = {'w': jnp.full((d,), 0.1), 'b': jnp.asarray(0.0)}
  return loss, params, x, y


def _stack(tree, n):
  return jax.tree.map(lambda v: jnp.broadcast_to(v, (n,) + jnp.shape(v)), tree)


def _train(tx, loss, steps, extra_out=None):
  """Per-worker training for ``steps`` (a scan); returns the per-step outputs stacked on axis 0."""
  def run(p, x, y):
    def body(carry, _):
      p, s = carry
      u, s = tx.update(jax.grad(loss)(p, x, y), s, p)
      p = optax.apply_updates(p, u)
      return (p, s), (p if extra_out is None else extra_out(p, s))
    return jax.lax.scan(body, (p, tx.init(p)), None, length=steps)[1]
  return run


@pytest.mark.parametrize('inner', [optax.sgd(0.3), optax.sgd(0.3, momentum=0.9)], ids=['sgd', 'momentum'])
def test_diloco_h1_outer_sgd1_is_synchronous_data_parallel(x64, inner):
  n, steps = 4, 5
  loss, params, x, y = _problem(n)
  params = jax.tree.map(lambda v: v.astype(jnp.float64), params)
  tx = ls.diloco(inner, optax.sgd(1.0), sync_every=1)
  got = axis.run(_train(tx, loss, steps), n)(_stack(params, n), x, y)
  # Synchronous data parallel: one inner optimizer on the mean gradient.
  p, s = params, inner.init(params)
  for t in range(steps):
    g = jax.tree.map(lambda *gs: sum(gs) / n, *[jax.grad(loss)(p, x[i], y[i]) for i in range(n)])
    u, s = inner.update(g, s, p)
    p = optax.apply_updates(p, u)
    for i in range(n):
      jax.tree.map(lambda a, b: np.testing.assert_allclose(a[i, t], b, rtol=1e-13, atol=1e-15), got, p)


def test_streaming_one_fragment_no_overlap_is_diloco(x64):
  n, steps = 4, 9
  loss, params, x, y = _problem(n)
  params = jax.tree.map(lambda v: v.astype(jnp.float64), params)
  a = ls.diloco(optax.adam(0.05), sync_every=3)
  b = ls.streaming_diloco(optax.adam(0.05), sync_every=3, num_fragments=1, overlap=0, mixing=0.0, quantize=None)
  pa = axis.run(_train(a, loss, steps), n)(_stack(params, n), x, y)
  pb = axis.run(_train(b, loss, steps), n)(_stack(params, n), x, y)
  jax.tree.map(lambda s, t: np.testing.assert_allclose(s, t, rtol=1e-13, atol=1e-15), pa, pb)


def _torchft_runs():
  with open(os.path.join(FIXTURES, 'torchft_streaming_diloco.json')) as f:
    return json.load(f)['runs']


def _run_id(r):
  return f"P{r['num_fragments']}_tau{r['overlap']}_a{r['mixing']}"


@pytest.mark.parametrize('run', _torchft_runs(), ids=_run_id)
def test_streaming_matches_torchft_regression_fixtures(run):
  """torchft's mocked DiLoCo: two 1x1 layers (one per fragment) from 1.0, gradient 2, inner SGD lr 1, outer
  SGD lr 2 per fragment, sync_every 6, two replicas; parameters after every step (see fixtures/README)."""
  hist = np.asarray(run['params_after_step'])
  tx = ls.streaming_diloco(optax.sgd(1.0), optax.sgd(2.0), sync_every=6, num_fragments=run['num_fragments'],
                           overlap=run['overlap'], mixing=run['mixing'], quantize=None)
  params = {'layers.0.weight': jnp.ones((1, 1)), 'layers.1.weight': jnp.ones((1, 1))}
  steps = len(hist) - 1

  def go(p):
    s = tx.init(p)
    out = []
    for _ in range(steps):
      u, s = tx.update(jax.tree.map(lambda v: jnp.full_like(v, 2.0), p), s, p)
      p = optax.apply_updates(p, u)
      out.append(jnp.stack([p['layers.0.weight'][0, 0], p['layers.1.weight'][0, 0]]))
    return jnp.stack(out)

  got = axis.run(go, 2)(_stack(params, 2))
  np.testing.assert_allclose(got[0], hist[1:], rtol=1e-6)
  np.testing.assert_allclose(got[1], hist[1:], rtol=1e-6)


def test_diloco_first_round_by_hand_with_fp4_outer_gradients():
  """Two workers, inner SGD 0.5 for 2 steps, FP4 E3M0 pseudo-gradients averaged in float32, Nesterov outer."""
  g = jnp.array([[1.0, 0.3, -0.01], [0.5, -0.2, 0.0]])
  tx = ls.diloco(optax.sgd(0.5), sync_every=2, compressor=comp.fp4_e3m0())

  def go(p, gi):
    s = tx.init(p)
    for _ in range(2):
      u, s = tx.update(gi, s, p)
      p = optax.apply_updates(p, u)
    return p, s.comm.sent

  p, sent = axis.run(go, 2)(jnp.zeros((2, 3)), g)
  # Delta_i = 2 * 0.5 * g_i = g_i. FP4 with absmax scale: worker 0: scale 1, |0.3| -> 0.25, |0.01| -> 2^-6
  # (0.0156: nearest of {0, 2^-6} to 0.01); worker 1: scale 0.5, 0.2/0.5 = 0.4 -> 0.5 (0.4 is nearer 0.5 than 0.25).
  q0 = np.array([1.0, 0.25, -2.0 ** -6])
  q1 = np.array([0.5, -0.25, 0.0])
  delta = (q0 + q1) / 2
  want = -0.7 * (delta + 0.9 * delta)
  np.testing.assert_allclose(p[0], want, rtol=1e-6)
  np.testing.assert_allclose(p[1], want, rtol=1e-6)
  assert sent.tolist() == [2 + 4, 2 + 4]  # ceil(3/2) bytes of codes + the float32 scale


def test_streaming_schedule_peak_bytes_and_encoded_payload():
  """One fragment sends every H/P steps, tau steps before it syncs; bytes = the real FP4 payload."""
  params = {'a': jnp.ones((8, 4)), 'b': jnp.ones((6,)), 'c': jnp.ones((4, 4)), 'd': jnp.ones((5,))}
  h, p, tau = 8, 2, 1
  tx = ls.streaming_diloco(optax.sgd(0.1), sync_every=h, num_fragments=p, overlap=tau)
  n = 4
  grads = jax.tree.map(lambda v: jax.random.normal(jax.random.key(3), (n,) + v.shape), params)

  def go(q, g):
    def body(carry, _):
      q, s = carry
      u, s = tx.update(g, s, q)
      return (optax.apply_updates(q, u), s), s.comm.sent
    return jax.lax.scan(body, (q, tx.init(q)), None, length=2 * h)[1]

  sent = np.asarray(axis.run(go, n)(_stack(params, n), grads))
  schedule = ls.streaming_step_bytes(params, sync_every=h, num_fragments=p, overlap=tau)
  np.testing.assert_array_equal(sent[0], np.tile(schedule, 2))
  # Strided fragments: {a, c} and {b, d}; fragment 0 sends after step h/p - tau = 3, fragment 1 after 7.
  frag0 = [np.zeros((8, 4), np.float32), np.zeros((4, 4), np.float32)]
  frag1 = [np.zeros(6, np.float32), np.zeros(5, np.float32)]
  c = comp.fp4_e3m0()
  compress = jax.jit(lambda x: comp.compress_tree(c, x, None))
  rng = np.random.default_rng(0)
  for step, frag in ((3, frag0), (7, frag1)):
    x = [rng.standard_normal(f.shape).astype(np.float32) for f in frag]
    payload = comp.encode_tree(c, jax.device_get(compress(x)), x)
    assert schedule[step - 1] == len(payload)
  # By hand: dense float32 = 4 * 59 entries; FP4 = ceil(size / 2) + 4 per leaf: a 20, b 7, c 12, d 7.
  assert ls.sync_bytes(params) == 236 and ls.sync_bytes(params, c) == 46
  assert schedule.sum() == 46  # a period sends one model's worth, in pieces
  assert schedule.max() == 20 + 12 and sorted(schedule[schedule > 0]) == [14, 32]


def test_sparseloco_compressor_by_hand_and_wire_format():
  c = ls.sparseloco_compressor(chunk=2, k=1, bins=4, range_sigmas=6.0)
  x = jnp.array([[0.5, -2.0, 0.1, 0.2], [1.0, 0.0, -0.3, 3.0]])
  payload = c.compress(x, None)
  # 2x2 tiles: [[.5,-2],[1,0]] -> -2 ; [[.1,.2],[-.3,3]] -> 3. Values v = (-2, 3): shift 0.5, centred (-2.5, 2.5),
  # std = |c| / sqrt(1) = 3.5355, scale = 6 std / 4 = 5.303; codes round(c / scale + 2) = (2 - 0.47, 2 + 0.47)
  # -> (2, 2): one bin, lookup[2] = mean(-2.5, 2.5) = 0, so both decode to the shift 0.5 (2-bit is lossy).
  np.testing.assert_array_equal(np.asarray(payload['codes']), [2, 2])
  out = c.decompress(payload, x.shape, x.dtype)
  np.testing.assert_allclose(out, [[0, 0.5, 0, 0], [0, 0, 0, 0.5]], atol=1e-7)
  x2 = jax.random.normal(jax.random.key(0), (64, 48))
  p2 = jax.device_get(c.compress(x2, None))
  data = c.encode(p2, x2.shape, x2.dtype)
  assert len(data) == c.nbytes(x2.shape, x2.dtype)
  np.testing.assert_array_equal(c.decompress(c.decode(data, x2.shape, x2.dtype), x2.shape, x2.dtype),
                                c.decompress(p2, x2.shape, x2.dtype))
  d = ls.sparseloco_compressor()  # templar's defaults: 64 x 64 tiles, k = 64, 12-bit indices, 2-bit values
  assert d.nbytes((128, 256), jnp.float32) == 8 * 64 * 14 // 8 + 4 + 16


def test_sparseloco_error_feedback_invariant_and_bytes():
  n, beta, lr = 4, 0.9, 0.7
  params = {'w': jnp.zeros((8, 6)), 'v': jnp.zeros((12,))}
  tx = ls.sparseloco(optax.sgd(0.1), sync_every=2, learning_rate=lr, decay=beta, chunk=4, k=3)
  rng = np.random.default_rng(1)
  grads = [jax.tree.map(lambda v: rng.standard_normal((n,) + v.shape).astype(np.float32), params)
           for _ in range(6)]

  def go(p, grads):
    s = tx.init(p)
    rows = []
    for t in range(6):
      before = s
      local = optax.apply_updates(p, jax.tree.map(lambda g: -0.1 * g, grads[t]))
      u, s = tx.update(grads[t], s, p)
      p = optax.apply_updates(p, u)
      rows.append((before, local, s))
    return rows

  rows = jax.device_get(axis.run(go, n)(_stack(params, n), grads))
  c = ls.sparseloco_compressor(chunk=4, k=3)
  roundtrip = jax.jit(jax.vmap(lambda a: comp.decompress_tree(c, comp.compress_tree(c, a, None), a)))
  compress = jax.jit(lambda a: comp.compress_tree(c, a, None))
  for t in (1, 3, 5):  # syncs after steps 2, 4, 6
    before, local, after = rows[t]
    delta = jax.tree.map(lambda a, x: a - x, before.anchor, local)
    acc = jax.tree.map(lambda e, d: beta * e + d, before.reducer_state, delta)
    sent = jax.tree.map(lambda a, e: a - e, acc, after.reducer_state)   # e_new + C(e) = beta e_old + Delta
    jax.tree.map(lambda s, w: np.testing.assert_allclose(s, w, atol=1e-6), sent, roundtrip(acc))
    assert np.all(np.sum(np.abs(sent['v']) > 1e-6, axis=1) <= 3 * 3)  # three chunks of 4, k=3 each
    assert np.all(np.sum(np.abs(sent['w']) > 1e-6, axis=(1, 2)) <= 4 * 3)  # four 4x3 tiles
    acc_0 = jax.tree.map(lambda v: v[0], acc)
    assert int(after.comm.sent[0]) == len(comp.encode_tree(c, jax.device_get(compress(acc_0)), acc_0))
    mean_sent = jax.tree.map(lambda v: v.mean(0), sent)
    step = jax.tree.map(lambda a, b: (a[0] - b[0]) / lr, before.anchor, after.anchor)
    jax.tree.map(lambda s, w: np.testing.assert_allclose(s, w, rtol=1e-5, atol=1e-6), step, mean_sent)


def _methods():
  return {  # DiLoCo with a randomised compressor: per-worker keys must agree across backends too
      'diloco_int8': ls.diloco(optax.adam(0.05), sync_every=3, compressor=comp.int8(stochastic=True)),
      'streaming': ls.streaming_diloco(optax.adam(0.05), sync_every=4, num_fragments=2, overlap=1, mixing=0.5),
      'sparseloco': ls.sparseloco(optax.adam(0.05), sync_every=3, chunk=2, k=1),
  }


@pytest.mark.parametrize('name', sorted(_methods()))
def test_backends_agree(name):
  tx = _methods()[name]
  loss, params, x, y = _problem(N, seed=2)
  go = _train(tx, loss, 7, extra_out=lambda p, s: (p, s.comm.sent, s.anchor))
  want = axis.run(go, N)(_stack(params, N), x, y)
  for backend in ('shard_map', 'pmap'):
    got = axis.run(go, N, backend=backend)(_stack(params, N), x, y)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), want, got)
  # Every worker holds the same global parameters (anchor) at every step.
  jax.tree.map(lambda v: np.testing.assert_allclose(v, np.broadcast_to(v[:1], v.shape), rtol=1e-6), want[2])


def test_bad_input_is_rejected():
  # jit, bf16, orbax and the backends are the conformance suite's (tests/decentral/test_conformance_decentral.py).
  one = ls.diloco(optax.sgd(0.1), sync_every=2, axis_name=None)
  s = one.init({'w': jnp.ones(3)})
  with pytest.raises(ValueError, match='tree structure'):
    one.update({'v': jnp.ones(3)}, s, {'w': jnp.ones(3)})
  with pytest.raises(ValueError, match='sync_every'):
    ls.diloco(optax.sgd(0.1), sync_every=0)
  with pytest.raises(ValueError, match='multiple of num_fragments'):
    ls.streaming_diloco(optax.sgd(0.1), sync_every=6, num_fragments=4)
  with pytest.raises(ValueError, match='overlap'):
    ls.streaming_diloco(optax.sgd(0.1), sync_every=6, num_fragments=2, overlap=3)
  with pytest.raises(ValueError, match='mixing'):
    ls.streaming_diloco(optax.sgd(0.1), sync_every=6, num_fragments=2, mixing=1.5)
  with pytest.raises(ValueError, match='quantize'):
    ls.streaming_diloco(optax.sgd(0.1), sync_every=6, quantize='fp3')
  with pytest.raises(ValueError, match='no parameters'):
    ls.streaming_diloco(optax.sgd(0.1), sync_every=6, num_fragments=3, axis_name=None).init({'w': jnp.ones(2)})
  with pytest.raises(ValueError, match='decay'):
    ls.sparseloco(optax.sgd(0.1), sync_every=2, decay=1.5)
  with pytest.raises(ValueError, match='bins'):
    ls.sparseloco_compressor(bins=3)


def test_local_methods_train_digits_close_to_data_parallel():
  """4 workers, softmax regression on scikit-learn's digits, 60 steps each: DiLoCo (H=5), Streaming DiLoCo
  (P=2, tau=1, FP4) and SparseLoCo reach a loss near synchronous data parallel at the same compute."""
  from sklearn.datasets import load_digits
  d = load_digits()
  n, steps, bs = 4, 40, 32
  x = jnp.asarray(d.data[:1280] / 16.0, jnp.float32).reshape(n, -1, 64)
  y = jnp.asarray(d.target[:1280]).reshape(n, -1)
  params = {'w': jnp.zeros((64, 10)), 'b': jnp.zeros(10)}

  def loss(p, xb, yb):
    return optax.softmax_cross_entropy_with_integer_labels(xb @ p['w'] + p['b'], yb).mean()

  def full_loss(p):
    return loss(p, x.reshape(-1, 64), y.reshape(-1))

  def train(tx, p, xi, yi):
    def body(carry, t):
      p, s = carry
      lo = (t * bs) % xi.shape[0]
      g = jax.grad(loss)(p, jax.lax.dynamic_slice_in_dim(xi, lo, bs), jax.lax.dynamic_slice_in_dim(yi, lo, bs))
      u, s = tx.update(g, s, p)
      return (optax.apply_updates(p, u), s), None
    return jax.lax.scan(body, (p, tx.init(p)), jnp.arange(steps))[0][0]

  methods = {
      'ddp': optax.chain(decentral.aggregate(decentral.mean, axis_name='workers'), optax.adam(0.05)),
      'diloco': ls.diloco(optax.adam(0.05), sync_every=5),
      'streaming': ls.streaming_diloco(optax.adam(0.05), sync_every=10, num_fragments=2, overlap=1),
      'sparseloco': ls.sparseloco(optax.adam(0.05), sync_every=5, chunk=16, k=32),
  }
  out = axis.run(lambda p, xi, yi: {k: train(tx, p, xi, yi) for k, tx in methods.items()}, n)(
      _stack(params, n), x, y)
  base = float(full_loss(params))
  ref = float(full_loss(jax.tree.map(lambda v: v[0], out.pop('ddp'))))
  assert ref < 0.3 * base
  for name, p in out.items():
    got = float(full_loss(jax.tree.map(lambda v: v.mean(0), p)))
    assert got < ref + 0.15, (name, got, ref)
