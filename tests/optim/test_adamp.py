"""AdamP and SGDP: first steps from the equations, the official trajectories, what the projection guarantees."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import torch_trajectories
from optim import adamp, sgdp
from optim.optimizers.adamp import project_radial

# A tiny problem in flax layout (in, out): W is scale-invariant per output channel, V as a whole (not per
# channel), U and b are ordinary.
RNG = np.random.RandomState(0)
INIT = {'W': RNG.randn(3, 2), 'V': RNG.randn(3, 2), 'U': RNG.randn(2, 2), 'b': RNG.randn(2)}
ZW, ZV, TU, TB = RNG.randn(3, 2), RNG.randn(3, 2), RNG.randn(2, 2), RNG.randn(2)
A = np.array([1.5, -0.7])


def loss(p):
  w_hat = p['W'] / jnp.linalg.norm(p['W'], axis=0, keepdims=True)
  v_hat = p['V'] / jnp.linalg.norm(p['V'])
  return (jnp.sum(A * jnp.sum(w_hat * ZW, axis=0)) + jnp.sum(jnp.sin(3 * v_hat) * ZV)
          + 0.5 * jnp.sum((p['U'] - TU) ** 2 * jnp.array([[1.0, 4.0], [0.5, 2.0]])) + 0.5 * jnp.sum((p['b'] - TB) ** 2))


def numpy_grad(p):
  """The gradient of ``loss`` by hand (NumPy), so the hand-computed steps do not lean on JAX."""
  n = np.linalg.norm(p['W'], axis=0, keepdims=True)
  w_hat = p['W'] / n
  gw = A * (ZW - w_hat * np.sum(w_hat * ZW, axis=0)) / n
  nv = np.linalg.norm(p['V'])
  v_hat = p['V'] / nv
  outer = 3 * np.cos(3 * v_hat) * ZV
  gv = (outer - v_hat * np.sum(v_hat * outer)) / nv
  gu = (p['U'] - TU) * np.array([[1.0, 4.0], [0.5, 2.0]])
  return {'W': gw, 'V': gv, 'U': gu, 'b': p['b'] - TB}


def numpy_projection(u, g, w, delta, eps):
  """AdamP's projection as the paper states it, on flax-layout matrices (output channels are columns)."""
  for view in ('channel', 'layer'):
    axis = 0 if view == 'channel' else None
    length = w.shape[0] if view == 'channel' else w.size
    norm_w = np.sqrt(np.sum(w * w, axis=axis, keepdims=True))
    norm_g = np.sqrt(np.sum(g * g, axis=axis, keepdims=True))
    cos = np.abs(np.sum(g * w, axis=axis, keepdims=True)) / (np.maximum(norm_g, eps) * np.maximum(norm_w, eps))
    if np.max(cos) < delta / np.sqrt(length):
      w_n = w / (norm_w + eps)
      return u - w_n * np.sum(w_n * u, axis=axis, keepdims=True), view
  return u, None


def run_jax(tx, steps):
  @jax.jit
  def step(params, state):
    updates, state = tx.update(jax.grad(loss)(params), state, params)
    return optax.apply_updates(params, updates), state

  params = jax.tree.map(jnp.asarray, INIT)
  state = tx.init(params)
  out = []
  for _ in range(steps):
    params, state = step(params, state)
    out.append(jax.tree.map(np.asarray, params))
  return out


def adamp_by_hand(steps, lr, wd, nesterov, b1=0.9, b2=0.999, eps=1e-8, delta=0.1, wd_ratio=0.1):
  p = {k: v.copy() for k, v in INIT.items()}
  m = {k: 0 * v for k, v in p.items()}
  v2 = {k: 0 * v for k, v in p.items()}
  out, views = [], []
  for t in range(1, steps + 1):
    g = numpy_grad(p)
    new, fired = {}, {}
    for k in p:
      m[k] = b1 * m[k] + (1 - b1) * g[k]
      v2[k] = b2 * v2[k] + (1 - b2) * g[k] ** 2
      num = b1 * m[k] + (1 - b1) * g[k] if nesterov else m[k]
      u = num / (np.sqrt(v2[k]) / np.sqrt(1 - b2 ** t) + eps)
      ratio, fired[k] = 1.0, None
      if p[k].ndim > 1:
        u, fired[k] = numpy_projection(u, g[k], p[k], delta, eps)
        ratio = wd_ratio if fired[k] else 1.0
      new[k] = p[k] * (1 - lr * wd * ratio) - lr / (1 - b1 ** t) * u
    p = new
    out.append(p)
    views.append(fired)
  return out, views


def sgdp_by_hand(steps, lr, wd, momentum, dampening, nesterov, buffer, eps=1e-8, delta=0.1, wd_ratio=0.1):
  p = {k: v.copy() for k, v in INIT.items()}
  buf = {k: 0 * v for k, v in p.items()}
  out = []
  for _ in range(steps):
    g = numpy_grad(p)
    new = {}
    for k in p:
      buf[k] = momentum * buf[k] + (1 - dampening) * g[k]
      d = g[k] + momentum * buf[k] if nesterov else buf[k]
      ratio = 1.0
      if p[k].ndim > 1:
        d, fired = numpy_projection(d, g[k], p[k], delta, eps)
        ratio = wd_ratio if fired else 1.0
        if buffer == 'official' and not nesterov:
          buf[k] = d  # the official code projects its buffer in place
      new[k] = p[k] * (1 - lr * wd * ratio / (1 - momentum)) - lr * d
    p = new
    out.append(p)
  return out


def _assert_steps_close(got, want, rtol=1e-12):
  for t, (g, w) in enumerate(zip(got, want)):
    for k in w:
      np.testing.assert_allclose(g[k], w[k], rtol=rtol, atol=1e-14, err_msg=f'step {t + 1}, {k}')


@pytest.mark.parametrize('nesterov', [False, True])
def test_adamp_first_steps_by_hand(x64, nesterov):
  want, views = adamp_by_hand(4, lr=0.05, wd=0.1, nesterov=nesterov)
  # The problem exercises every branch: channel view on W, layer view on V, none on U.
  assert all(v == {'W': 'channel', 'V': 'layer', 'U': None, 'b': None} for v in views), views
  _assert_steps_close(run_jax(adamp(0.05, weight_decay=0.1, nesterov=nesterov), 4), want)


@pytest.mark.parametrize('nesterov, buffer', [(False, 'official'), (False, 'paper'), (True, 'official')])
def test_sgdp_first_steps_by_hand(x64, nesterov, buffer):
  kw = dict(lr=0.1, wd=0.01, momentum=0.9, dampening=0.1, nesterov=nesterov, buffer=buffer)
  want = sgdp_by_hand(4, **kw)
  tx = sgdp(0.1, momentum=0.9, dampening=0.1, weight_decay=0.01, nesterov=nesterov, buffer=buffer)
  _assert_steps_close(run_jax(tx, 4), want)


def test_sgdp_buffer_conventions_differ():
  # Without Nesterov the official code's stored momentum is the projected one; the paper's is not.
  official = run_jax(sgdp(0.1, momentum=0.9), 3)[-1]
  paper = run_jax(sgdp(0.1, momentum=0.9, buffer='paper'), 3)[-1]
  assert not np.allclose(official['W'], paper['W'])
  np.testing.assert_array_equal(official['b'], paper['b'])  # vectors are never projected: identical


@pytest.mark.parametrize('name', ['adamp', 'adamp_nesterov'])
def test_adamp_matches_official_trajectory(x64, name):
  init, grads, reference, hp = torch_trajectories.load(name)
  tx = adamp(hp['lr'], b1=hp['betas'][0], b2=hp['betas'][1], eps=hp['eps'], weight_decay=hp['weight_decay'],
             delta=hp['delta'], wd_ratio=hp['wd_ratio'], nesterov=hp['nesterov'])
  torch_trajectories.assert_trajectories_match(torch_trajectories.replay(tx, init, grads), reference)


@pytest.mark.parametrize('name', ['sgdp', 'sgdp_nesterov'])
def test_sgdp_matches_official_trajectory(x64, name):
  init, grads, reference, hp = torch_trajectories.load(name)
  tx = sgdp(hp['lr'], momentum=hp['momentum'], dampening=hp['dampening'], weight_decay=hp['weight_decay'],
            nesterov=hp['nesterov'], eps=hp['eps'], delta=hp['delta'], wd_ratio=hp['wd_ratio'])
  torch_trajectories.assert_trajectories_match(torch_trajectories.replay(tx, init, grads), reference)


def test_adamp_matches_pytorch_optimizer_with_eps_on_the_uncorrected_root(x64):
  # The authors' placement (the default) is ~4e-6 relative away from this trajectory at eps = 1e-8.
  init, grads, reference, hp = torch_trajectories.load('adamp_pytorch_optimizer')
  kwargs = dict(b1=hp['betas'][0], b2=hp['betas'][1], eps=hp['eps'], weight_decay=hp['weight_decay'],
                delta=hp['delta'], wd_ratio=hp['wd_ratio'], nesterov=hp['nesterov'])
  ours = torch_trajectories.replay(adamp(hp['lr'], **kwargs, eps_placement='uncorrected'), init, grads)
  torch_trajectories.assert_trajectories_match(ours, reference)


def test_fixture_exercises_channel_and_layer_views(x64):
  # In the official runs, W1 and the conv kernel K (per-channel normalised) take the channel view and V
  # (normalised as a whole) the layer view at every step; the head W2 does not at the first step.
  init, grads, reference, _ = torch_trajectories.load('adamp')
  fired = jax.jit(lambda g, w: project_radial(g, g, w, delta=0.1, eps=1e-8)[1])
  params = init
  for t in range(grads['W1'].shape[0]):
    for name in ('W1', 'K', 'V'):
      assert bool(fired(grads[name][t], params[name])), (t, name)
    g, w = grads['V'][t], params['V']
    per_channel = np.abs(np.sum(g * w, axis=0)) / (np.linalg.norm(g, axis=0) * np.linalg.norm(w, axis=0))
    assert np.max(per_channel) > 0.1 / np.sqrt(w.shape[0])  # V: the layer view, not the channel view
    if t == 0:
      assert not bool(fired(grads['W2'][0], params['W2']))
    params = {n: torch_trajectories._to_flax(n, reference[n][t]) for n in reference}


def test_torch_layout_gives_the_same_trajectory(x64):
  # layout='torch' on PyTorch-layout arrays is the official code verbatim; no transposition anywhere.
  init, grads, reference, hp = torch_trajectories.load('adamp')
  tx = adamp(hp['lr'], weight_decay=hp['weight_decay'], layout='torch')
  torch_trajectories.assert_trajectories_match(torch_trajectories.replay(tx, init, grads, layout='torch'), reference)


def test_projected_step_is_tangent_so_the_norm_grows_only_at_second_order(x64):
  # The paper's point: on a scale-invariant weight the radial part of a momentum step only inflates ||w||,
  # shrinking the effective step. SGDP's step q is orthogonal to every channel of W (and to V as a whole), so
  # ||w_{t+1}||^2 = ||w_t||^2 + lr^2 ||q||^2 exactly (Pythagoras), step after step.
  def stepper(tx):
    @jax.jit
    def step(params, state):
      updates, state = tx.update(jax.grad(loss)(params), state, params)
      return optax.apply_updates(params, updates), state, updates
    return step

  lr = 0.5
  tx = sgdp(lr, momentum=0.9, eps=0.0)  # eps in ||w|| + eps would leave a radial residue of relative size eps
  step = stepper(tx)
  params = jax.tree.map(jnp.asarray, INIT)
  state = tx.init(params)
  for _ in range(10):
    new, state, updates = step(params, state)
    np.testing.assert_allclose(jnp.sum(updates['W'] * params['W'], axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(jnp.sum(updates['V'] * params['V']), 0.0, atol=1e-12)
    np.testing.assert_allclose(jnp.sum(new['W'] ** 2, axis=0),
                               jnp.sum(params['W'] ** 2, axis=0) + jnp.sum(updates['W'] ** 2, axis=0), rtol=1e-12)
    params = new
  # Plain momentum on the same problem has a radial component (its buffer holds earlier gradients).
  tx = optax.sgd(lr, momentum=0.9)
  step = stepper(tx)
  params = jax.tree.map(jnp.asarray, INIT)
  state = tx.init(params)
  radial = []
  for _ in range(10):
    new, state, updates = step(params, state)
    radial.append(float(jnp.max(jnp.abs(jnp.sum(updates['W'] * params['W'], axis=0)))))
    params = new
  assert max(radial) > 1e-3


def test_needs_params_and_rejects_bad_arguments():
  tx = adamp(1e-3)
  with pytest.raises(ValueError, match='params'):
    tx.update({'w': jnp.ones((2, 2))}, tx.init({'w': jnp.ones((2, 2))}))
  with pytest.raises(ValueError, match='buffer'):
    sgdp(0.1, buffer='projected')
  with pytest.raises(ValueError, match='layout'):
    adamp(1e-3, layout='nchw')
  with pytest.raises(ValueError, match='delta'):
    adamp(1e-3, delta=-0.1)
  with pytest.raises(ValueError, match='momentum'):
    sgdp(0.1, momentum=1.0)


@pytest.mark.parametrize('make', [lambda: adamp(1e-3, mu_dtype=jnp.bfloat16),
                                  lambda: sgdp(0.1, momentum=0.9, mu_dtype=jnp.bfloat16)])
def test_mu_dtype_and_bf16_parameters(make):
  params = {'w': jnp.ones((4, 3), jnp.bfloat16), 'b': jnp.zeros(3, jnp.float32)}
  tx = make()
  state = tx.init(params)
  for _ in range(2):
    updates, state = tx.update(jax.tree.map(lambda p: jnp.ones_like(p) * 0.5, params), state, params)
  assert updates['w'].dtype == jnp.bfloat16 and updates['b'].dtype == jnp.float32
  first_moment = state[0].mu if hasattr(state[0], 'mu') else state[0].momentum
  assert first_moment['b'].dtype == jnp.bfloat16  # stored in mu_dtype even for a float32 parameter
