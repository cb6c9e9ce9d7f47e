"""Subspace-compressed links: the projection by hand, exact reconstruction under the constraint, exact gradients of
a compressed pipeline, the constraint kept by optax, and the bytes of a link."""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from decentral.pipeline import links
from decentral.pipeline import subspace as sp
from decentral.pipeline.transformer import Transformer, stage_params


@functools.lru_cache(maxsize=None)  # one compiled init per problem across the tests (all run under x64)
def _problem(k=4, stages=2, constrained=True):
  anchor = sp.anchor_embedding(jax.random.key(1), 11, 16)
  basis = sp.random_basis(jax.random.key(2), 16, k)
  model = Transformer(vocab_size=11, d_model=16, layers=2 * stages, heads=2, block=8, stages=stages, anchor=anchor)

  @jax.jit
  def init(key):
    params = model.init(key)
    leaves, tree = jax.tree.flatten(params)  # move every leaf off its init (zero biases would hide a missed write)
    keys = jax.random.split(jax.random.key(3), len(leaves))
    params = tree.unflatten([x + 0.1 * jax.random.normal(kk, x.shape, x.dtype) for x, kk in zip(leaves, keys)])
    return sp.constrain(params, basis) if constrained else params

  params = init(jax.random.key(0))
  tokens = jax.random.randint(jax.random.key(4), (3, 8), 0, 11)
  return model, params, basis, anchor, tokens


def test_projection_by_hand(x64):
  u = np.array([[1.0], [1.0], [0.0]]) / math.sqrt(2)   # d = 3, k = 1
  w = np.array([[1.0, 2.0, 3.0], [0.0, -4.0, 5.0]])      # two rows of a write
  # w U U^T: each row r -> (r . u) u; (1 + 2)/sqrt2 * u = (1.5, 1.5, 0), (0 - 4)/sqrt2 * u = (-2, -2, 0)
  np.testing.assert_allclose(sp.project(jnp.asarray(w), jnp.asarray(u)), [[1.5, 1.5, 0.0], [-2.0, -2.0, 0.0]])
  anchor = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
  h = np.array([[[1.0, 1.0, 1.0], [3.0, 2.0, 0.0]]])   # tokens (0, 1): h - A[x] = (1, 1, 0), (2, 2, 0)
  c = sp.encode(jnp.asarray(h), jnp.array([[0, 1]]), jnp.asarray(u), jnp.asarray(anchor))
  np.testing.assert_allclose(c[..., 0], [[math.sqrt(2), 2 * math.sqrt(2)]], rtol=1e-6)
  back = sp.decode(c, jnp.array([[0, 1]]), jnp.asarray(u), jnp.asarray(anchor))
  np.testing.assert_allclose(back, h, rtol=1e-6)


def test_basis_is_orthonormal_and_checked(x64):
  u = sp.random_basis(jax.random.key(0), 16, 5)
  np.testing.assert_allclose(u.T @ u, np.eye(5), atol=1e-13)
  with pytest.raises(ValueError, match='k must be'):
    sp.random_basis(jax.random.key(0), 4, 5)
  with pytest.raises(ValueError, match='subspace_link: anchor'):
    sp.subspace_link(u, jnp.zeros((3, 8)))


def test_constrain_touches_only_the_writes_before_the_last_link(x64):
  model, raw, basis, _, _ = _problem(constrained=False)
  params = jax.jit(sp.constrain)(raw, basis)
  violation = jax.jit(sp.constraint_violation)
  assert float(violation(raw, basis)) > 1e-3
  assert float(violation(params, basis)) < 1e-14
  np.testing.assert_allclose(params['stages']['mlp_down'][-1], raw['stages']['mlp_down'][-1])  # last stage free
  np.testing.assert_allclose(params['stages']['qkv'], raw['stages']['qkv'])                  # readers untouched
  np.testing.assert_allclose(params['head']['out'], raw['head']['out'])
  again = jax.jit(sp.constrain)(params, basis)
  for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(params)):
    np.testing.assert_allclose(a, b, atol=1e-14)


@pytest.mark.parametrize('constrained', [True, False])
def test_stage_input_rebuilt_from_k_numbers_and_token_ids(x64, constrained):
  model, params, basis, anchor, tokens = _problem(k=4, stages=4, constrained=constrained)

  @jax.jit
  def link_errors(params):
    h = model.embed(params, tokens)
    errors = []
    for s in range(model.stages - 1):           # every link: stage s -> s + 1
      h = model.stage_fn(stage_params(params, s), h, s)
      c = sp.encode(h, tokens, basis, anchor)
      assert c.shape == tokens.shape + (4,)
      errors.append(jnp.abs(sp.decode(c, tokens, basis, anchor) - h).max())
    return jnp.stack(errors)

  errors = np.asarray(link_errors(params))
  if constrained:
    assert max(errors) < 1e-12
  else:  # the same message without the constraint is a lossy rank-4 projection of a 16-wide stream
    assert min(errors) > 1e-2


def _pipelined_loss(model, basis, anchor):
  def loss(params, tokens, targets):
    h = model.embed(params, tokens)
    for s in range(model.stages):
      if s:  # the link: send k numbers per token, rebuild on the next stage
        h = sp.decode(sp.encode(h, tokens, basis, anchor), tokens, basis, anchor)
      h = model.stage_fn(stage_params(params, s), h, s)
    return model.head_loss(params, h, targets)
  return loss


def test_the_gradient_sent_back_is_u_transpose_of_the_full_one(x64):
  model, params, basis, anchor, tokens = _problem(k=4, stages=2)
  after = lambda h: model.head_loss(params, model.stage_fn(stage_params(params, 1), h, 1), tokens)

  @jax.jit
  def both(params):
    h0 = model.stage_fn(stage_params(params, 0), model.embed(params, tokens), 0)
    g_code = jax.grad(lambda c: after(sp.decode(c, tokens, basis, anchor)))(sp.encode(h0, tokens, basis, anchor))
    return g_code, jax.grad(after)(h0)

  g_code, g_full = both(params)
  assert g_code.shape == tokens.shape + (4,)   # k numbers per token cross back
  np.testing.assert_allclose(g_code, g_full @ basis, rtol=1e-10, atol=1e-14)


def test_link_through_ppermute_matches_unsplit_and_counts_k_per_token(x64):
  model, params, basis, anchor, tokens = _problem(k=4, stages=2)
  targets = jnp.roll(tokens, -1, 1)
  link = sp.subspace_link(basis, anchor)
  stacked = params['stages']

  def per_stage(stage_p, s, params):
    h = model.stage_fn(stage_p, model.embed(params, tokens), s)          # tick 1: stage 0 works
    h = links.send(link, h, tokens, tokens, axis_name='stage', num_stages=2)
    h = model.stage_fn(stage_p, h, s)                                   # tick 2: stage 1 works
    return jnp.where(s == 1, model.head_loss(params, h, targets), 0.0)

  def loss(params):
    rest = dict(params, stages=None)
    return jax.vmap(per_stage, in_axes=(0, 0, None), axis_name='stage')(params['stages'], jnp.arange(2), rest).sum()

  val, got = jax.jit(jax.value_and_grad(loss))(dict(params, stages=stacked))
  ref_val, ref = jax.jit(jax.value_and_grad(model.loss))(params, tokens, targets)
  np.testing.assert_allclose(val, ref_val, rtol=1e-13)
  # every gradient is exact but those of the writes before the link, which agree once projected onto span(U)
  for a, b in zip(jax.tree.leaves(sp.constrain(got, basis)), jax.tree.leaves(sp.constrain(ref, basis))):
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
  for name in ('qkv', 'mlp_up', 'ln1_scale'):
    np.testing.assert_allclose(got['stages'][name], ref['stages'][name], rtol=1e-9, atol=1e-12)
  assert float(sp.constraint_violation(ref, basis)) > 1e-4  # ... and the projection is not a no-op
  h = jax.ShapeDtypeStruct(tokens.shape + (16,), jnp.float64)
  assert links.message_nbytes(link, h, tokens) == (3 * 8 * 4 * 8,) * 2   # batch x tokens x k x 8 bytes, each way


def test_pipelined_and_unsplit_replicas_train_alike_and_stay_constrained(x64):
  model, params, basis, anchor, tokens = _problem(k=4, stages=2)
  targets = jnp.roll(tokens, -1, 1)
  unsplit = piped = sp.constrained(optax.adamw(1e-2, weight_decay=0.1), basis)
  pipelined_loss = _pipelined_loss(model, basis, anchor)

  @jax.jit
  def steps(params):
    def body(carry, _):
      (pa, sa), (pb, sb) = carry
      la, ga = jax.value_and_grad(model.loss)(pa, tokens, targets)
      gb = jax.grad(pipelined_loss)(pb, tokens, targets)
      ua, sa = unsplit.update(ga, sa, pa)
      ub, sb = piped.update(gb, sb, pb)
      return ((optax.apply_updates(pa, ua), sa), (optax.apply_updates(pb, ub), sb)), la
    init = ((params, unsplit.init(params)), (params, piped.init(params)))
    ((pa, _), (pb, _)), losses = jax.lax.scan(body, init, None, length=12)
    return pa, pb, losses

  pa, pb, losses = steps(params)
  for a, b in zip(jax.tree.leaves(pa), jax.tree.leaves(pb)):
    np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)
  assert float(sp.constraint_violation(pa, basis)) < 1e-12
  assert float(model.loss(pa, tokens, targets)) < 0.5 * float(losses[0])
