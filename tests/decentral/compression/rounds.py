"""Test helper for the compression tests: a worker-axis transform run over rounds of given gradients."""

import jax


def scan_rounds(tx):
  """The per-worker function ``g -> (outputs, final state)`` scanning ``tx.update`` over the rounds of ``g``.

  ``g[t]`` is this worker's gradient at round t (so, stacked over workers by ``decentral.axis.run``, ``g[i, t]``);
  the state starts from ``tx.init`` of the first round's gradient.
  """

  def run(g):
    def body(state, gt):
      out, state = tx.update(gt, state)
      return state, out
    state, outs = jax.lax.scan(body, tx.init(jax.tree.map(lambda x: x[0], g)), g)
    return outs, state

  return run
