"""Heterogeneous replicas with SparseLoCo on a (replica x stage) mesh: the same numbers as an oracle built from the
unsplit (projected where compressed) model and SparseLoCo over replicas with each stage's parameters as their own
leaves; vmap = shard_map; error feedback per replica and per stage; the ledger's pipeline bytes per kind."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import residual_stages as model
from decentral import axis, ledger
from decentral.local_sgd import sparseloco
from decentral.pipeline import heterogeneous, links, mesh

R, S, M, K, STEPS, H = 4, 2, 2, 2, 2, 2  # the last step syncs
SPARSE = dict(chunk=4, k=3)  # small tiles so the top-k really drops entries of these small leaves


def _link():
  u, _ = jnp.linalg.qr(jax.random.normal(jax.random.key(7), (model.WIDTH, K)))
  return links.compressed(lambda h, ids: h @ u, lambda c, ids: c @ u.T, name='subspace'), u


def _data():
  inputs, targets = model.batch(jax.random.key(1), STEPS * R * M)
  shape = lambda a: a.reshape(STEPS, R, M, *a.shape[1:])
  return shape(inputs), shape(targets)  # [steps, replica, microbatch, batch, tokens]


def _mesh_run(pipelined, compress_all, backend):
  link, _ = _link()
  rep = heterogeneous.heterogeneous_sparseloco(
      model.stage, model.first, model.last, inner=optax.adam(1e-2), sync_every=H, link=link, pipelined=pipelined,
      compress_all=compress_all, num_microbatches=M, **SPARSE)
  params = jax.tree.map(lambda x: jnp.broadcast_to(x, (R,) + x.shape), model.init(jax.random.key(0), S))
  state = mesh.run(rep.init, R, S, backend=backend)(params)
  step = mesh.run(rep.step, R, S, backend=backend)
  inputs, targets = _data()
  at_stages = lambda a: jnp.broadcast_to(a[:, None], (R, S) + a.shape[1:])  # each stage of a replica sees its data
  losses, sent = [], []
  for t in range(STEPS):
    params, state, loss = step(params, state, at_stages(inputs[t]), at_stages(targets[t]))
    losses.append(loss)
    sent.append(state.pipeline.sent)
  return params, state, np.stack(losses), np.stack(sent)


def _oracle(pipelined):
  """SparseLoCo over R replicas on the unsplit model, parameters as a tuple of S stage trees (one EF each)."""
  _, u = _link()
  stacked = model.init(jax.random.key(0), S)
  per_stage = tuple(jax.tree.map(lambda a: a[s], stacked) for s in range(S))
  tx = sparseloco(optax.adam(1e-2), sync_every=H, axis_name='replica', **SPARSE)

  def loss(stages, x, y, compress):
    def one(xb, yb):
      h = model.first(stages[0], xb)
      for s in range(S):
        h = model.stage(stages[s], h, jnp.asarray(s))
        if s < S - 1:
          h = jnp.where(compress, (h @ u) @ u.T, h)
      return model.last(stages[-1], h, yb)
    return jnp.mean(jax.vmap(one)(x.reshape(-1, *x.shape[2:]), y.reshape(-1, *y.shape[2:])))

  def run(p, x, y, compress):
    def one_step(carry, batch):
      p, state = carry
      value, g = jax.value_and_grad(loss)(p, *batch, compress)
      updates, state = tx.update(g, state, p)
      return (optax.apply_updates(p, updates), state), value

    (p, _), losses = jax.lax.scan(one_step, (p, tx.init(p)), (x, y))
    return p, losses

  inputs, targets = _data()
  params = jax.tree.map(lambda a: jnp.broadcast_to(a, (R,) + a.shape), per_stage)
  return axis.run(run, R, axis_name='replica', in_axes=(0, 1, 1, 0))(
      params, inputs, targets, jnp.asarray(pipelined))


def test_selective_compression_matches_the_oracle_under_vmap_and_shard_map(x64):
  pipelined = (False, True, False, True)
  runs = {b: _mesh_run(pipelined, False, b) for b in ('vmap', 'shard_map')}
  numbers = lambda run: [x for x in jax.tree.leaves(run) if not jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)]
  for a, b in zip(numbers(runs['vmap']), numbers(runs['shard_map'])):
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
  params, state, losses, sent = runs['vmap']
  ref_params, ref_losses = _oracle(pipelined)
  np.testing.assert_allclose(losses, np.repeat(np.asarray(ref_losses).T[:, :, None], S, axis=2), rtol=1e-10)
  for s in range(S):
    for name in ('w1', 'w2', 'embed', 'head'):
      np.testing.assert_allclose(params[name][:, s], ref_params[s][name], rtol=1e-8, atol=1e-12,
                                 err_msg=f'{name} stage {s}')
  # after the sync every replica holds the same stage parameters, and stages differ from one another
  np.testing.assert_allclose(params['w1'][0], params['w1'][3], rtol=1e-12)
  assert not np.allclose(params['w1'][0, 0], params['w1'][0, 1])
  # one error-feedback buffer per replica and per stage, all different
  ef = np.asarray(state.outer.reducer_state['w1'])
  assert ef.shape[:2] == (R, S)
  flat = ef.reshape(R * S, -1)
  assert np.linalg.matrix_rank(flat) == R * S
  # the ledger: full replicas send d numbers per token to the next stage, compressed ones k; the outer bytes
  # (SparseLoCo's) come at the sync step, and ledger.sent_bytes adds both. S = 2: M codes one way per stage.
  per_token = 2 * 5 * 8  # batch x tokens x float64
  np.testing.assert_array_equal(sent[-1][:, 0], [M * w * per_token for w in (model.WIDTH, K, model.WIDTH, K)])
  np.testing.assert_array_equal(sent[-1][:, 0], sent[-1][:, 1])
  outer = np.asarray(state.outer.comm.sent)
  assert (outer > 0).all()
  np.testing.assert_array_equal(ledger.sent_bytes(state), outer + sent[-1])


def test_bytes_per_kind_and_compress_all():
  link, _ = _link()
  h = jax.ShapeDtypeStruct((2, 5, model.WIDTH), jnp.float32)
  ids = jax.ShapeDtypeStruct((2, 5), jnp.int32)
  full = heterogeneous.stage_nbytes(links.identity(), h, ids, num_stages=S, num_microbatches=M)
  small = heterogeneous.stage_nbytes(link, h, ids, num_stages=S, num_microbatches=M)
  np.testing.assert_array_equal(small, full * K // model.WIDTH)
  assert heterogeneous.compressed_replicas((False, True)) == (False, True)
  assert heterogeneous.compressed_replicas((False, True), compress_all=True) == (True, True)
  with pytest.raises(ValueError, match='pipelined'):
    heterogeneous.compressed_replicas(())


