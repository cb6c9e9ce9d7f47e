"""DGC: momentum SGD at density 1, first steps by hand, the threshold's guarantees, nothing lost, backends.

The transform contract (one trace, bf16, orbax, clear errors) is checked on the registered DGC by
``tests/decentral/test_conformance_decentral.py``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from decentral import axis
from decentral.compression import deep_gradient as dgc
from rounds import scan_rounds

N = 8


@pytest.mark.parametrize('nesterov', [False, True])
def test_density_one_is_momentum_sgd_on_the_averaged_gradient(nesterov):
  k = jax.random.split(jax.random.key(0), 2)
  g = {'w': jax.random.normal(k[0], (4, 3, 5, 2)), 'b': jax.random.normal(k[1], (4, 3, 2))}
  tx = optax.chain(dgc.scale_by_dgc(1.0, 0.9, axis_name='w', nesterov=nesterov), optax.sgd(0.1))
  out, _ = axis.run(scan_rounds(tx), 4, axis_name='w')(g)
  ref = optax.sgd(0.1, momentum=0.9, nesterov=nesterov)
  state = ref.init(jax.tree.map(lambda x: x[0, 0], g))
  for t in range(3):
    want, state = ref.update(jax.tree.map(lambda x, t=t: x[:, t].mean(0), g), state)
    for name in g:
      np.testing.assert_allclose(out[name][0, t], want[name], rtol=1e-5, atol=1e-6)


def test_first_steps_by_hand_with_momentum_correction_and_masking():
  # One 2 x 2 leaf (entries 0..3), two workers, density 1/4 (k = 1, exact threshold), m = 0.5.
  g = jnp.array([[[4.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 3.0]],
                 [[0.0, 2.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]]]).reshape(2, 2, 2, 2)
  out, state = axis.run(scan_rounds(dgc.scale_by_dgc(0.25, 0.5, axis_name='w')), 2, axis_name='w')(g)
  # Worker 0, round 0: u = v = [4, 0, 0, 1]; sends 4 at 0; v = u = [0, 0, 0, 1] (masked).
  #          round 1: u = 0.5 [0, 0, 0, 1] + [1, 0, 0, 3] = [1, 0, 0, 3.5]; v = [1, 0, 0, 4.5]; sends 4.5 at 3.
  # Worker 1, round 0: u = v = [0, 2, 0, 1]; sends 2 at 1; v = u = [0, 0, 0, 1].
  #          round 1: u = [0, 0, 0, 0.5]; v = [0, 0, 0, 1.5]; sends 1.5 at 3.
  np.testing.assert_allclose(out[0, 0].ravel(), [2.0, 1.0, 0.0, 0.0])
  np.testing.assert_allclose(out[0, 1].ravel(), [0.0, 0.0, 0.0, 3.0])
  np.testing.assert_allclose(state.velocity[0].ravel(), [1.0, 0.0, 0.0, 0.0])
  np.testing.assert_allclose(state.momentum[0].ravel(), [1.0, 0.0, 0.0, 0.0])
  # Without momentum masking the momentum keeps the sent entries: worker 0 after round 1 has u = [1, 0, 0, 3.5]
  # only if round 0 left u = [4, 0, 0, 1]: u = 0.5 [4, 0, 0, 1] + [1, 0, 0, 3] = [3, 0, 0, 3.5].
  _, state = axis.run(scan_rounds(dgc.scale_by_dgc(0.25, 0.5, axis_name='w', momentum_masking=False)), 2,
                      axis_name='w')(g)
  np.testing.assert_allclose(state.momentum[0].ravel(), [3.0, 0.0, 0.0, 3.5])
  assert int(state.comm.sent[0]) == 4 + 1  # one float32 value, one uint8 index


def test_nothing_is_lost_sent_plus_residual_equals_accumulated_momentum():
  """With momentum correction: n sum_t direction_t + sum_j v_j,T = sum_j sum_t u_j,t (lossless feedback)."""
  g = jax.random.normal(jax.random.key(2), (2, 5, 50, 40))

  tx = dgc.scale_by_dgc(0.01, 0.9, axis_name='w', momentum_masking=False)

  def run(g):
    def body(carry, gt):
      state, out_sum, u_sum = carry
      out, state = tx.update(gt, state)
      return (state, out_sum + out, u_sum + state.momentum), None
    zeros = jnp.zeros_like(g[0])
    (state, out_sum, u_sum), _ = jax.lax.scan(body, (tx.init(g[0]), zeros, zeros), g)
    return out_sum, state.velocity, u_sum, state.comm.sent

  out_sum, v, u_sum, sent = axis.run(run, 2, axis_name='w')(g)
  np.testing.assert_allclose(2 * out_sum[0] + v.sum(0), u_sum.sum(0), rtol=1e-4, atol=1e-4)
  k = int(np.ceil(0.01 * 2000))
  assert 0.8 * k * 6 <= int(sent[0]) <= k * 6  # between 0.8 k and k entries, float32 + uint16 index


def test_sampled_threshold_sends_between_point_eight_k_and_k_largest_entries():
  # 60000 entries at density 0.001: a strided sample (not the exact top-k) sets the threshold.
  plan = dgc._plan(60000, 0.001, [0.001], 0.01)
  assert plan.stride > 1 and plan.num_samples >= 2000 and plan.k == (60,)
  for seed in range(3):
    v = jax.random.normal(jax.random.key(seed), (60000,)) * jnp.exp(jax.random.normal(jax.random.key(9), (60000,)))
    keep, n_sent = jax.jit(lambda v, k: dgc._select(v, plan, 0, k))(v, jax.random.key(seed))
    n_sent, keep = int(n_sent), np.asarray(keep)
    assert 0.8 * 60 <= n_sent <= 60 and keep.sum() == n_sent
    rank = np.argsort(np.argsort(-np.abs(np.asarray(v))))  # 0 = largest
    # every sent entry is among the 1.3 k largest (the threshold passed at most 1.3 k entries), or exact top-k
    assert np.all(rank[keep] < 1.3 * 60)
  # More than 1.3 k entries pass the sampled threshold (a heavy tail the sample misses): the exact top-k is sent.
  v = jnp.zeros(60000).at[:500].set(jnp.linspace(2.0, 1.0, 500))
  keep, n_sent = jax.jit(lambda v, k: dgc._select(v, plan, 0, k))(v, jax.random.key(0))
  np.testing.assert_array_equal(np.flatnonzero(np.asarray(keep)), np.arange(60))
  assert int(n_sent) == 60
  idx, valid = dgc._slots(keep, 64)
  np.testing.assert_array_equal(np.asarray(idx)[np.asarray(valid)], np.arange(60))


def test_warmup_schedules_and_bytes_in_each_stage():
  assert dgc.warmup_densities(0.001, 0) == [0.001]
  tx = dgc.scale_by_dgc(0.001, 0.0, axis_name='w', warmup_epochs=2, steps_per_epoch=1)
  g = jnp.ones((2, 3, 40, 25)) * jnp.arange(1000.0).reshape(40, 25)  # 1000 entries: exact threshold

  def run(g):
    def body(state, gt):
      _, state = tx.update(gt, state)
      return state, state.comm.sent
    return jax.lax.scan(body, tx.init(g[0]), g)[1]

  sent = axis.run(run, 2, axis_name='w')(g)
  # densities 0.25, 0.0625 then 0.001 (paper schedule): k = 250, 63, 1 entries of float32 + uint16 index.
  np.testing.assert_array_equal(sent[0], [250 * 6, 63 * 6, 1 * 6])


def test_sampled_threshold_same_on_every_backend():
  """The sampled threshold (a random start per worker), warm-up and local clipping: vmap = shard_map = pmap.

  The rest of the contract (one trace, bf16, orbax) is the worker-axis conformance suite's, on the registered DGC.
  """
  tx = dgc.scale_by_dgc(0.05, 0.9, axis_name='w', clip_norm=1.0, warmup_epochs=1, steps_per_epoch=1)
  k = jax.random.split(jax.random.key(1), 2)
  g = {'w': jax.random.normal(k[0], (N, 20, 10)), 'b': jax.random.normal(k[1], (N, 10))}

  def two_rounds(g):
    out1, state = tx.update(g, tx.init(g))
    out2, state = tx.update(jax.tree.map(lambda x: -0.5 * x, g), state)
    return out1, out2, state.comm.sent, state.velocity

  want = axis.run(two_rounds, N, axis_name='w')(g)
  for backend in ('shard_map', 'pmap'):
    got = axis.run(two_rounds, N, axis_name='w', backend=backend)(g)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), want, got)


def test_bad_input():
  with pytest.raises(ValueError, match='density'):
    dgc.scale_by_dgc(0.0, axis_name='w')
  with pytest.raises(ValueError, match='momentum'):
    dgc.scale_by_dgc(0.01, 1.0, axis_name='w')
  with pytest.raises(ValueError, match='warmup'):
    dgc.scale_by_dgc(0.01, axis_name='w', warmup_epochs=2, warmup='linear')
  with pytest.raises(ValueError, match='clip_norm'):
    dgc.scale_by_dgc(0.01, axis_name='w', clip_norm=-1.0)
