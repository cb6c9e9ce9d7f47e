"""The pipeline's character transformer: against a numpy forward pass, causality, stage split, training."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from decentral.pipeline.transformer import Transformer, stage_params
from experiments.lib.common import data as data_lib


def _np_layer_norm(x, scale, bias):
  mean = x.mean(-1, keepdims=True)
  var = ((x - mean) ** 2).mean(-1, keepdims=True)
  return (x - mean) / np.sqrt(var + 1e-5) * scale + bias


def _np_gelu(x):  # the tanh form, jax.nn.gelu's default
  return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def _np_logits(model, params, tokens, anchor=None):
  """The model written out in numpy, block by block, from the equations of the class docstring."""
  p = jax.tree.map(np.asarray, params)
  h = p['embed']['tok'][tokens] + p['embed']['pos'][:tokens.shape[1]]
  if anchor is not None:
    h = h + np.asarray(anchor)[tokens]
  b, t, d = h.shape
  nh, c = model.heads, d // model.heads
  for s in range(model.stages):
    for l in range(model.layers_per_stage):
      q = {k: v[s, l] for k, v in p['stages'].items()}
      x = _np_layer_norm(h, q['ln1_scale'], q['ln1_bias']) @ q['qkv']
      qq, kk, vv = (x[..., i * d:(i + 1) * d].reshape(b, t, nh, c) for i in range(3))
      out = np.zeros((b, t, nh, c))
      for i in range(t):  # token i attends to tokens 0..i
        w = np.einsum('bhc,bjhc->bhj', qq[:, i], kk[:, :i + 1]) / math.sqrt(c)
        w = np.exp(w - w.max(-1, keepdims=True))
        w /= w.sum(-1, keepdims=True)
        out[:, i] = np.einsum('bhj,bjhc->bhc', w, vv[:, :i + 1])
      h = h + out.reshape(b, t, d) @ q['attn_out'] + q['attn_out_bias']
      x = _np_layer_norm(h, q['ln2_scale'], q['ln2_bias'])
      h = h + _np_gelu(x @ q['mlp_up'] + q['mlp_up_bias']) @ q['mlp_down'] + q['mlp_down_bias']
  hd = p['head']
  return _np_layer_norm(h, hd['ln_scale'], hd['ln_bias']) @ hd['out'] + hd['out_bias']


def _randomised(params, key):
  """Parameters with every leaf perturbed (zero biases and unit scales would hide mistakes)."""
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(key, len(leaves))
  return tree.unflatten([x + 0.3 * jax.random.normal(k, x.shape, x.dtype) for x, k in zip(leaves, keys)])


@pytest.mark.parametrize('with_anchor', [False, True])
def test_matches_numpy_forward(x64, with_anchor):
  anchor = jax.random.normal(jax.random.key(5), (7, 8)) if with_anchor else None
  model = Transformer(vocab_size=7, d_model=8, layers=4, heads=2, block=6, stages=2, anchor=anchor)
  params = _randomised(model.init(jax.random.key(0)), jax.random.key(1))
  tokens = np.asarray(jax.random.randint(jax.random.key(2), (3, 5), 0, 7))
  targets = np.roll(tokens, -1, 1)
  got_logits, got_loss = jax.jit(lambda p: (model.apply(p, tokens), model.loss(p, tokens, targets)))(params)
  logits = _np_logits(model, params, tokens, anchor)
  np.testing.assert_allclose(got_logits, logits, rtol=1e-10, atol=1e-10)
  logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  expected = -np.take_along_axis(logp, targets[..., None], -1).mean()
  np.testing.assert_allclose(got_loss, expected, rtol=1e-12)


def test_stages_compose_to_unsplit_and_share_shape(x64):
  model = Transformer(vocab_size=9, d_model=16, layers=4, heads=4, block=8, stages=4)
  params = _randomised(model.init(jax.random.key(0)), jax.random.key(1))
  tokens = jax.random.randint(jax.random.key(2), (2, 8), 0, 9)

  @jax.jit
  def both(params):
    h = model.embed(params, tokens)
    for s in range(4):
      out = model.stage_fn(stage_params(params, s), h, s)
      assert out.shape == h.shape == (2, 8, 16)
      h = out
    return model.head_loss(params, h, tokens), model.loss(params, tokens, tokens)

  np.testing.assert_allclose(*both(params), rtol=1e-13)


def test_causal(x64):
  model = Transformer(vocab_size=9, d_model=16, layers=2, heads=2, block=8, stages=1)
  params = _randomised(model.init(jax.random.key(0)), jax.random.key(1))
  tokens = jnp.arange(8)[None] % 9
  changed = tokens.at[0, 5].set(3)
  a, b = jax.jit(jax.vmap(model.apply, (None, 0)))(params, jnp.stack([tokens, changed]))
  np.testing.assert_allclose(a[0, :5], b[0, :5], rtol=1e-13)
  assert np.abs(a[0, 5:] - b[0, 5:]).max() > 1e-6


def test_keeps_dtype_and_checks_arguments():
  model = Transformer(vocab_size=5, d_model=8, layers=2, heads=2, block=4, stages=2)
  params = model.init(jax.random.key(0), jnp.bfloat16)
  assert jax.eval_shape(model.apply, params, jnp.zeros((1, 4), jnp.int32)).dtype == jnp.bfloat16
  with pytest.raises(ValueError, match='multiple of stages'):
    Transformer(vocab_size=5, layers=3, stages=2)
  with pytest.raises(ValueError, match='anchor'):
    Transformer(vocab_size=5, d_model=8, heads=2, anchor=jnp.zeros((5, 4)))
  with pytest.raises(ValueError, match='block'):
    model.embed(params, jnp.zeros((1, 5), jnp.int32))


def test_learns_the_embedded_text():
  corpus = data_lib.load_text(None)
  model = Transformer(vocab_size=len(corpus.vocab), d_model=32, layers=2, heads=2, block=16, stages=2)
  params = model.init(jax.random.key(0))
  opt = optax.adam(3e-3)
  state = opt.init(params)

  @jax.jit
  def step(params, state, x, y):
    loss, g = jax.value_and_grad(model.loss)(params, x, y)
    u, state = opt.update(g, state, params)
    return optax.apply_updates(params, u), state, loss

  losses = []
  for i in range(40):
    x, y = data_lib.char_batch(corpus.train, 16, 16, i)
    params, state, loss = step(params, state, x, y)
    losses.append(float(loss))
  assert losses[0] > math.log(len(corpus.vocab)) - 0.3  # starts near uniform
  assert np.mean(losses[-5:]) < 0.7 * losses[0]
