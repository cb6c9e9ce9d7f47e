"""The communication ledger: exact integer totals, stats found inside chained optimizer states."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from decentral import axis, ledger
from decentral import compression as C
from decentral.compression import deep_gradient as dgc
from decentral.compression import feedback as error_feedback


def test_ledger_totals_are_exact_python_integers():
  led = ledger.Ledger(3)
  big = 2 ** 40  # beyond int32 and float32 precision
  for step in range(5):
    led.record(step, np.array([big, big + 1, 7]))
  assert led.total == 5 * (2 * big + 8) and led.per_worker.tolist() == [5 * big, 5 * (big + 1), 35]
  assert led.rounds == 5 and led.history[-1] == {'step': 4, 'bytes_round': 2 * big + 8, 'bytes_total': led.total}
  with pytest.raises(ValueError, match='one per worker'):
    led.record(5, np.array([1, 2]))
  with pytest.raises(ValueError, match='non-negative'):
    led.record(5, -1)


def test_sent_bytes_sums_every_communicating_transform_in_a_chain():
  tx = optax.chain(error_feedback.error_feedback(C.top_k(2), axis_name='w'),
                   dgc.scale_by_dgc(0.5, 0.0, axis_name='w'), optax.sgd(0.1))
  g = {'w': jnp.ones((2, 4, 5)), 'b': jnp.ones((2, 5))}

  def step(g):
    _, state = tx.update(g, tx.init(g))
    return state

  state = axis.run(step, 2, axis_name='w')(g)
  assert len(ledger.find_stats(state)) == 2
  ef_bytes = 2 * (4 + 1) * 2  # top-2 on both leaves: 2 float32 + 2 uint8 indices each
  dgc_bytes = 10 * (4 + 1) + 5 * 4  # density 0.5 of the 20-entry matrix; the bias dense
  np.testing.assert_array_equal(ledger.sent_bytes(state), [ef_bytes + dgc_bytes] * 2)
  led = ledger.Ledger(2)
  assert led.record_state(0, state) == 2 * (ef_bytes + dgc_bytes)
  with pytest.raises(ValueError, match='no CommStats'):
    ledger.sent_bytes(optax.sgd(0.1).init(g))
  assert ledger.dense_nbytes(jax.tree.map(lambda x: x[0], g)) == 100
  assert ledger.compression_ratio(100, 0) == float('inf') and ledger.compression_ratio(100, 4) == 25.0
