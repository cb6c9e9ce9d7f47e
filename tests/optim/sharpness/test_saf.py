"""SAF's trajectory loss: the tempered KL and its gradient by hand, the logit memory's slots, whole epochs of
training computed by hand in float64 from the paper's loss, the epoch window and the errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optim
from optim.sharpness import trajectory


def _softmax(z):
  z = z - z.max(-1, keepdims=True)
  e = np.exp(z)
  return e / e.sum(-1, keepdims=True)


def _kl_np(f, z, t):
  p, q = _softmax(z / t), _softmax(f / t)
  return t ** 2 * np.mean(np.sum(p * (np.log(p) - np.log(q)), -1))


def test_tempered_kl_and_its_gradient_by_hand(x64):
  rng = np.random.default_rng(0)
  f, z, t = rng.normal(size=(5, 4)), rng.normal(size=(5, 4)), 3.0
  np.testing.assert_allclose(trajectory.tempered_kl(f, z, t), _kl_np(f, z, t), rtol=1e-12)
  # d/df T^2 KL(p || q) = T (q - p) / B; the target gets no gradient.
  g_f, g_z = jax.grad(trajectory.tempered_kl, argnums=(0, 1))(f, z, t)
  np.testing.assert_allclose(g_f, t * (_softmax(f / t) - _softmax(z / t)) / 5, rtol=1e-10)
  np.testing.assert_array_equal(g_z, 0.0)


def test_memory_reads_the_logits_of_memory_epochs_ago(x64):
  term = optim.saf(num_examples=3, num_classes=2, weight=1.0, temperature=1.0, memory_epochs=2, start_epoch=1)
  state = term.init()
  idx = jnp.arange(3)
  history = {e: np.full((3, 2), float(e)) * np.array([1.0, -1.0]) for e in range(6)}
  f = np.array([[0.3, 0.1], [0.0, 0.0], [-1.0, 2.0]])
  for e in range(6):
    state = term.update(state, epoch=e, logits=history[e], indices=idx)
    if e > 1:   # inside the window (start_epoch=1): the logits written at epoch e - 2 are the target
      np.testing.assert_allclose(term.loss(f, state, epoch=e, indices=idx), _kl_np(f, history[e - 2], 1.0),
                                 rtol=1e-12)
  assert state.logits.shape == (3, 3, 2)   # (memory_epochs + 1) N K numbers


def test_window_is_strict_as_in_the_code(x64):
  term = optim.saf(num_examples=2, num_classes=2, memory_epochs=1, start_epoch=2, end_epoch=4)
  state = term.update(term.init(), epoch=0, logits=jnp.ones((2, 2)) * jnp.array([3.0, 0.0]), indices=jnp.arange(2))
  state = term.update(state, epoch=1, logits=jnp.ones((2, 2)) * jnp.array([3.0, 0.0]), indices=jnp.arange(2))
  on = [float(term.loss(jnp.zeros((2, 2)), state, epoch=e, indices=jnp.arange(2))) > 0 for e in range(6)]
  assert on == [False, False, False, True, False, False]


def _train_np(x, y, w, idx_batches, epochs, lr, lam, t, memory, start):
  """Plain numpy: SGD on CE + lam T^2 KL(z_{e - memory} || f), the memory written as the code writes it."""
  n, k = len(x), w.shape[1]
  buf = np.zeros((memory + 1, n, k))
  for e in range(epochs):
    for idx in idx_batches:
      xb, yb = x[idx], y[idx]
      f = xb @ w
      buf[e % (memory + 1), idx] = f
      dlogits = (_softmax(f) - np.eye(k)[yb]) / len(idx)
      if start < e:
        past = buf[(e - memory) % (memory + 1), idx]
        dlogits = dlogits + lam * t * (_softmax(f / t) - _softmax(past / t)) / len(idx)
      w = w - lr * xb.T @ dlogits
  return w


def test_epochs_of_training_match_the_loss_computed_by_hand(x64):
  rng = np.random.default_rng(1)
  n, d, k = 8, 3, 4
  x, y = rng.normal(size=(n, d)), rng.integers(0, k, n)
  w0 = rng.normal(size=(d, k)) * 0.1
  batches = [np.array([3, 0, 5, 1]), np.array([2, 7, 4, 6])]
  lam, t, memory, start, epochs, lr = 0.7, 2.0, 2, 2, 6, 0.5
  term = optim.saf(num_examples=n, num_classes=k, weight=lam, temperature=t, memory_epochs=memory,
                   start_epoch=start)
  loss = trajectory.regularize(lambda w, xb: xb @ w, lambda f, yb: -jnp.take_along_axis(
      jax.nn.log_softmax(f), yb[:, None], -1)[:, 0], term)
  xj, yj = jnp.asarray(x), jnp.asarray(y)

  @jax.jit
  def step(w, state, idx, epoch):
    (_, (logits, _)), g = jax.value_and_grad(loss, has_aux=True)(w, state, xj[idx], yj[idx], epoch=epoch,
                                                                 indices=idx)
    return w - lr * g, term.update(state, epoch=epoch, logits=logits, indices=idx)

  w, state = jnp.asarray(w0), term.init()
  for e in range(epochs):
    for idx in batches:
      w, state = step(w, state, jnp.asarray(idx), e)
  want = _train_np(x, y, w0, batches, epochs, lr, lam, t, memory, start)
  np.testing.assert_allclose(w, want, rtol=1e-10, atol=1e-12)
  # and the trajectory term changed the result: without it the weights differ.
  plain = _train_np(x, y, w0, batches, epochs, lr, 0.0, t, memory, start)
  assert np.abs(want - plain).max() > 1e-4


@pytest.mark.parametrize('kwargs, match', [
    (dict(memory_epochs=0), 'memory_epochs'),
    (dict(memory_epochs=3, start_epoch=1), 'start_epoch'),
    (dict(temperature=0.0), 'temperature'),
    (dict(weight=-1.0), 'weight'),
    (dict(start_epoch=5, end_epoch=5), 'end_epoch'),
])
def test_bad_arguments_name_themselves(kwargs, match):
  with pytest.raises(ValueError, match=f'saf.*{match}'):
    optim.saf(num_examples=4, num_classes=3, **kwargs)
