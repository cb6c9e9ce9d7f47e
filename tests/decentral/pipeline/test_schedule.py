"""The GPipe schedule on a stage axis equals the unsplit model: loss and every stage's gradient, float64, under
vmap and shard_map, for S in {2, 4} and M in {1, 3} (the residual MLP stack of ``residual_stages`` and part B's
transformer); and its bubble is (S - 1)/(M + S - 1) of the ticks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import residual_stages as model
from decentral import axis
from decentral.pipeline import schedule
from decentral.pipeline.transformer import Transformer, to_stages


def _pipelined(num_stages, num_microbatches, backend):
  loss = schedule.gpipe(model.stage, model.first, model.last, num_microbatches=num_microbatches)
  return axis.run(schedule.value_and_grad(loss), num_stages, axis_name='stage', backend=backend,
                  in_axes=(0, None, None))


# A Latin square of (S, M, backend): every S and every M under both backends (vmap = shard_map is also checked,
# against the same oracle), at half the compile time of the full product.
@pytest.mark.parametrize('num_stages,num_microbatches,backend', [(2, 1, 'vmap'), (2, 3, 'shard_map'),
                                                                 (4, 1, 'shard_map'), (4, 3, 'vmap')])
def test_pipeline_equals_unsplit_model(x64, backend, num_stages, num_microbatches):
  params = model.init(jax.random.key(num_stages), num_stages)
  inputs, targets = model.batch(jax.random.key(10 + num_microbatches), num_microbatches)
  value, grads = _pipelined(num_stages, num_microbatches, backend)(params, inputs, targets)
  ref_value, ref_grads = jax.jit(jax.value_and_grad(schedule.unsplit(model.stage, model.first, model.last)))(
      params, inputs, targets)
  np.testing.assert_allclose(value, np.full(num_stages, ref_value), rtol=1e-12)
  for name in ref_grads:  # the embedding's gradient lives on stage 0, the head's on the last stage
    np.testing.assert_allclose(grads[name], ref_grads[name], rtol=1e-10, atol=1e-13, err_msg=name)
  assert np.abs(ref_grads['w1']).min(axis=(1, 2)).max() > 0  # every stage's block is really exercised


def test_bubble_is_measured_by_the_schedule(num_stages=3, num_microbatches=4):
  loss = schedule.gpipe(model.stage, model.first, model.last, num_microbatches=num_microbatches)
  params = model.init(jax.random.key(0), num_stages, jnp.float32)
  inputs, targets = model.batch(jax.random.key(1), num_microbatches)
  _, busy = axis.run(loss, num_stages, axis_name='stage', in_axes=(0, None, None))(params, inputs, targets)
  busy = np.asarray(busy)
  ticks = num_microbatches + num_stages - 1
  assert busy.shape == (num_stages, ticks)
  np.testing.assert_array_equal(busy.sum(axis=1), num_microbatches)  # every stage runs each microbatch once
  for s in range(num_stages):  # ... at tick s + m, after its predecessor ran it
    np.testing.assert_array_equal(np.flatnonzero(busy[s]), s + np.arange(num_microbatches))
  idle = 1 - busy.mean()
  assert idle == pytest.approx(schedule.bubble_fraction(num_stages, num_microbatches))


def test_bad_arguments_name_them():
  with pytest.raises(ValueError, match='num_microbatches'):
    schedule.gpipe(model.stage, model.first, model.last, num_microbatches=0)
  with pytest.raises(ValueError, match='num_stages'):
    schedule.bubble_fraction(0, 3)


@pytest.mark.parametrize('backend,num_stages', [('vmap', 2), ('shard_map', 4)])
def test_transformer_pipeline_equals_unsplit_transformer(x64, backend, num_stages, num_microbatches=3):
  net = Transformer(vocab_size=7, d_model=8, layers=num_stages, heads=2, block=6, stages=num_stages, mlp_ratio=2)
  params = net.init(jax.random.key(3))
  ids = jax.random.randint(jax.random.key(4), (num_microbatches, 2, 7), 0, 7)
  inputs, targets = ids[..., :-1], ids[..., 1:]
  loss = schedule.gpipe(*net.pipeline_fns(), num_microbatches=num_microbatches)
  value, grads = axis.run(schedule.value_and_grad(loss), num_stages, axis_name='stage', backend=backend,
                          in_axes=(0, None, None))(to_stages(params), inputs, targets)
  whole = lambda p: jnp.mean(jax.vmap(net.loss, in_axes=(None, 0, 0))(p, inputs, targets))
  ref_value, ref_grads = jax.jit(jax.value_and_grad(whole))(params)
  np.testing.assert_allclose(value, np.full(num_stages, ref_value), rtol=1e-12)
  close = lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-14)
  jax.tree.map(close, grads['stages'], ref_grads['stages'])
  jax.tree.map(close, jax.tree.map(lambda g: g[0], grads['embed']), ref_grads['embed'])
  jax.tree.map(close, jax.tree.map(lambda g: g[-1], grads['head']), ref_grads['head'])
  # the copies of the embedding and head on the other stages are not used, so get no gradient
  assert all(np.all(g[1:] == 0) for g in jax.tree.leaves(grads['embed']))
  assert all(np.all(g[:-1] == 0) for g in jax.tree.leaves(grads['head']))
