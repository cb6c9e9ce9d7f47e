"""Inter-stage links: a compressed link sends k numbers per token each way, its backward is the exact gradient of
the projected model (by default) or the link's own backward pair, and the ledger counts k x tokens x element size
per microbatch and boundary."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import residual_stages as model
from decentral import axis, ledger
from decentral.pipeline import heterogeneous, links, schedule

K = 2


def _subspace_link(dtype=jnp.float64):
  """h -> U^T (h - shift(tokens)) and back; the shift is recomputed from the token ids (the side information)."""
  u, _ = jnp.linalg.qr(jax.random.normal(jax.random.key(7), (model.WIDTH, K), dtype))
  shift = jax.random.normal(jax.random.key(8), (model.VOCAB, model.WIDTH), dtype)
  return links.compressed(lambda h, ids: (h - shift[ids]) @ u, lambda c, ids: c @ u.T + shift[ids],
                          name='subspace'), u, shift


def _projected_unsplit(u, shift):
  """The unsplit model with every stage boundary replaced by its projection: the reference for the gradients."""
  def loss(stacked, inputs, targets):
    num_stages = stacked['w1'].shape[0]

    def one(x, y):
      p = lambda s: jax.tree.map(lambda a: a[s], stacked)
      h = model.first(p(0), x)
      for s in range(num_stages):
        h = model.stage(p(s), h, jnp.asarray(s))
        if s < num_stages - 1:
          h = ((h - shift[x]) @ u) @ u.T + shift[x]
      return model.last(p(num_stages - 1), h, y)

    return jnp.mean(jax.vmap(one)(inputs, targets))

  return loss


def test_compressed_link_gradient_is_exact_for_the_projected_model(x64, backend='shard_map'):
  link, u, shift = _subspace_link()
  params = model.init(jax.random.key(0), 4)
  inputs, targets = model.batch(jax.random.key(1), 3)
  loss = schedule.gpipe(model.stage, model.first, model.last, num_microbatches=3, link=link)
  value, grads = axis.run(schedule.value_and_grad(loss), 4, axis_name='stage', backend=backend,
                          in_axes=(0, None, None))(params, inputs, targets)
  ref_value, ref_grads = jax.jit(jax.value_and_grad(_projected_unsplit(u, shift)))(params, inputs, targets)
  np.testing.assert_allclose(value[0], ref_value, rtol=1e-12)
  for name in ref_grads:
    np.testing.assert_allclose(grads[name], ref_grads[name], rtol=1e-10, atol=1e-13, err_msg=name)
  unprojected = jax.jit(jax.grad(schedule.unsplit(model.stage, model.first, model.last)))(params, inputs, targets)
  assert not np.allclose(grads['w1'][0], unprojected['w1'][0])  # compression really changed the first stage


def test_only_codes_cross_the_wire(x64):
  """Every ppermute of the forward and backward pipeline carries [batch, tokens, k] codes, never activations."""
  link, _, _ = _subspace_link()
  params = model.init(jax.random.key(0), 2)
  inputs, targets = model.batch(jax.random.key(1), 2)
  loss = schedule.gpipe(model.stage, model.first, model.last, num_microbatches=2, link=link)
  step = schedule.value_and_grad(loss)
  per_device = lambda p, x, y: jax.tree.map(lambda a: a[None], step(jax.tree.map(lambda a: a[0], p), x, y))
  mesh = jax.sharding.Mesh(np.asarray(jax.devices()[:2]), ('stage',))
  spec = jax.sharding.PartitionSpec
  fn = jax.shard_map(per_device, mesh=mesh, in_specs=(spec('stage'), spec(), spec()), out_specs=spec('stage'))
  text = str(jax.make_jaxpr(fn)(params, inputs, targets))
  shapes = [line.split('=')[0] for line in text.splitlines() if 'ppermute' in line]
  assert len(shapes) >= 2  # forward and backward
  assert all(f'[2,5,{K}]' in s for s in shapes), shapes  # (batch, tokens, k) on each device


def test_custom_backward_pair_is_what_is_sent_back(x64):
  """A link's own backward pair replaces the transposes: scaling the gradient code by 2 doubles what stage 0
  receives (and only its gradient), which the default transpose would not do."""
  link, u, shift = _subspace_link()
  doubled = links.compressed(link.encode, link.decode, grad_encode=lambda g, ids: 2.0 * (g @ u),
                             grad_decode=lambda c, ids: c @ u.T)
  params = model.init(jax.random.key(0), 2)
  inputs, targets = model.batch(jax.random.key(1), 1)
  grads = {}
  for name, one in (('default', link), ('doubled', doubled)):
    loss = schedule.gpipe(model.stage, model.first, model.last, num_microbatches=1, link=one)
    grads[name] = axis.run(schedule.value_and_grad(loss), 2, axis_name='stage', in_axes=(0, None, None))(
        params, inputs, targets)[1]
  np.testing.assert_allclose(grads['doubled']['w1'][0], 2 * grads['default']['w1'][0], rtol=1e-10)
  np.testing.assert_allclose(grads['doubled']['w1'][1], grads['default']['w1'][1], rtol=1e-12)


def test_ledger_counts_k_tokens_element_size_per_microbatch():
  link, _, _ = _subspace_link(jnp.float32)
  batch, tokens, m, s = 2, 5, 3, 4
  h = jax.ShapeDtypeStruct((batch, tokens, model.WIDTH), jnp.float32)
  ids = jax.ShapeDtypeStruct((batch, tokens), jnp.int32)
  assert links.message_nbytes(link, h, ids) == (K * batch * tokens * 4,) * 2
  assert links.message_nbytes(links.identity(), h, ids) == (model.WIDTH * batch * tokens * 4,) * 2
  per_stage = heterogeneous.stage_nbytes(link, h, ids, num_stages=s, num_microbatches=m)
  led = ledger.Ledger(num_workers=s)
  led.record(step=0, sent=per_stage)
  # S - 1 boundaries, M microbatches, one code forward and one backward of k x tokens x 4 bytes each
  assert led.total == (s - 1) * m * 2 * K * batch * tokens * 4
  assert per_stage[0] == per_stage[-1] == m * K * batch * tokens * 4  # the ends send one way only


def test_bad_link_arguments_name_them():
  with pytest.raises(ValueError, match='encode'):
    links.compressed(None, lambda c, x: c)
