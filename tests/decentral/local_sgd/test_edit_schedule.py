"""EDiT's layer-wise sync schedule by hand, sync costs on the event simulator, and EDiT's step-triggered rounds."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from decentral import sim
from decentral.local_sgd import async_edit


def test_layerwise_schedule_by_hand():
  # f = (2, 1, 3), s = (1, 2, 0.5), prefetch 1: layer 0 syncs in [0, 1] and computes in [1, 3]; layer 1's sync is
  # issued when layer 0 starts (t = 1), ends at 3, computes in [3, 4]; layer 2's sync runs [3, 3.5], computes [4, 7].
  s = async_edit.layerwise_sync_schedule([2.0, 1.0, 3.0], [1.0, 2.0, 0.5])
  np.testing.assert_allclose(s['comm_start'], [0, 1, 3])
  np.testing.assert_allclose(s['comm_end'], [1, 3, 3.5])
  np.testing.assert_allclose(s['fwd_start'], [1, 3, 4])
  np.testing.assert_allclose(s['fwd_end'], [3, 4, 7])
  assert s['forward'] == 7.0 and s['overhead'] == 1.0
  blocking = async_edit.layerwise_sync_schedule([2.0, 1.0, 3.0], [1.0, 2.0, 0.5], overlap=False)
  assert blocking['forward'] == 9.5 and blocking['overhead'] == 3.5
  # Communication-bound layers: each sync waits for the previous one, prefetch cannot help.
  slow = [async_edit.layerwise_sync_schedule([1.0] * 3, [2.0] * 3, prefetch=p)['forward'] for p in (1, 3)]
  assert slow == [7.0, 7.0]


def test_layerwise_schedule_properties():
  rng = np.random.default_rng(0)
  for _ in range(20):
    f, c = rng.uniform(0.1, 2.0, 8), rng.uniform(0.0, 2.0, 8)
    s = async_edit.layerwise_sync_schedule(f, c)
    deep = async_edit.layerwise_sync_schedule(f, c, prefetch=8)
    blocking = async_edit.layerwise_sync_schedule(f, c, overlap=False)
    assert c[0] - 1e-12 <= deep['overhead'] <= s['overhead'] <= blocking['overhead'] + 1e-12
    assert np.all(s['comm_end'] <= s['fwd_start'] + 1e-12)  # every layer is synced before it computes
    assert np.all(np.diff(s['comm_start']) >= -1e-12) and np.all(s['comm_start'][1:] >= s['comm_end'][:-1] - 1e-12)
  with pytest.raises(ValueError, match='prefetch'):
    async_edit.layerwise_sync_schedule([1.0], [1.0], prefetch=0)


def test_round_cost_delays_the_next_round():
  log = []
  times = sim.step_time_model(2, slowdown=[1.0, 2.0])
  sim.run_time_triggered(2, times, period=3.0, total_time=8.0, on_step=lambda w, k, t: None, round_cost=0.5,
                         on_round=lambda t, steps: log.append((t, tuple(steps))) or True)
  # Round 1 at t = 4 (worker 1 ends its second step); both resume at 4.5, trigger 7.5: worker 0 steps at
  # 5.5, 6.5, 7.5 -> barrier; worker 1 at 6.5, 8.5 -> barrier; round 2 at 8.5.
  assert log == [(4.0, (3, 2)), (8.5, (3, 2))]


def _problem():
  rng = np.random.default_rng(0)
  a = rng.standard_normal((4, 16, 3)).astype(np.float32)
  b = a @ np.array([1.0, -2.0, 0.5], np.float32)

  def grad_fn(p, batch):
    xa, xb = batch
    return jax.value_and_grad(lambda q: jnp.mean((xa @ q - xb) ** 2))(p)

  return grad_fn, lambda w, k: (a[w], b[w])


def test_edit_rounds_wait_for_the_straggler_and_a_edit_rounds_do_not():
  grad_fn, batch_fn = _problem()
  times = sim.step_time_model(4, slowdown=[1.0, 1.0, 1.0, 2.0])
  common = dict(num_workers=4, inner=optax.sgd(0.05), grad_fn=grad_fn, batch_fn=batch_fn, step_time=times,
                total_time=40.0, sync_cost=1.0, warmup=3)
  _, edit = async_edit.run_a_edit(jnp.zeros(3), steps_per_round=4, **common)
  _, a_edit = async_edit.run_a_edit(jnp.zeros(3), sync_time=4.0, **common)
  # EDiT: every round is 4 steps of the slow worker (8.0) plus the sync (1.0).
  assert [h['steps'] for h in edit] == [[4, 4, 4, 4]] * len(edit)
  np.testing.assert_allclose([h['time'] for h in edit], 8.0 + 9.0 * np.arange(len(edit)))
  assert all(h['sync_end'] == h['time'] + 1.0 for h in edit)
  # A-EDiT: the fast workers take 4 steps in the time the slow one takes 2; rounds 5.0 apart (4 + the sync).
  assert a_edit[0]['steps'] == [4, 4, 4, 2] and a_edit[1]['time'] - a_edit[0]['time'] == 5.0
  assert sum(sum(h['steps']) for h in a_edit) > sum(sum(h['steps']) for h in edit)
  with pytest.raises(ValueError, match='exactly one'):
    async_edit.run_a_edit(jnp.zeros(3), sync_time=4.0, steps_per_round=4, **common)
