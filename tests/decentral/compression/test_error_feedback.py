"""EF, EF21 and EF21-W: first steps by hand, EF21's invariant, the step size, convergence.

The transform contract (one trace, vmap = shard_map = pmap, bf16, orbax, clear errors) is checked on the registered
EF, EF21 and EF21-W by ``tests/decentral/test_conformance_decentral.py``.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from decentral import axis
from decentral import compression as C
from decentral.compression import feedback as ef
from rounds import scan_rounds

N = 8


def test_classic_error_feedback_first_steps_by_hand():
  # Two workers, top-1. Round 0: p = g; worker 0 sends 3 (error [0, 2]), worker 1 sends -4 (error [1, 0]).
  # Round 1: p0 = [1, 1] + [0, 2] = [1, 3] -> sends 3 at 1, error [1, 0];
  #          p1 = [0, 0] + [1, 0] = [1, 0] -> sends 1 at 0, error [0, 0].
  g = jnp.array([[[3.0, 2.0], [1.0, 1.0]], [[1.0, -4.0], [0.0, 0.0]]])
  out, state = axis.run(scan_rounds(ef.error_feedback(C.top_k(1), axis_name='w')), 2, axis_name='w')(g)
  np.testing.assert_allclose(out[0], [[1.5, -2.0], [0.5, 1.5]])
  np.testing.assert_allclose(state.error, [[1.0, 0.0], [0.0, 0.0]])
  # Nothing is lost: what was sent plus what is left equals what came in, per worker.
  np.testing.assert_array_equal(state.comm.sent, [5, 5])


def test_ef21_first_steps_by_hand():
  # Two workers, d = 3, top-1, g_i^0 = grad f_i(x^0) sent dense.
  g = jnp.array([[[1.0, 2.0, 0.0], [2.0, 2.5, 0.0], [2.0, 2.5, 4.0]],
                 [[3.0, 0.0, 1.0], [3.0, -2.0, 1.0], [0.0, -2.0, 1.0]]])
  out, state = axis.run(scan_rounds(ef.ef21(C.top_k(1), axis_name='w')), 2, axis_name='w')(g)
  # Round 0: g = mean = [2, 1, 0.5].
  # Round 1: worker 0 diff [1, 0.5, 0] -> c0 = [1, 0, 0]; worker 1 diff [0, -2, 0] -> c1 = [0, -2, 0];
  #          g = [2, 1, 0.5] + [0.5, -1, 0] = [2.5, 0, 0.5]; g_0 = [2, 2, 0], g_1 = [3, -2, 1].
  # Round 2: worker 0 diff [0, 0.5, 4] -> [0, 0, 4]; worker 1 diff [-3, 0, 0] -> [-3, 0, 0];
  #          g = [2.5, 0, 0.5] + [-1.5, 0, 2] = [1, 0, 2.5].
  np.testing.assert_allclose(out[0], [[2.0, 1.0, 0.5], [2.5, 0.0, 0.5], [1.0, 0.0, 2.5]])
  np.testing.assert_allclose(state.worker[0], [2.0, 2.0, 4.0])
  np.testing.assert_allclose(state.worker[1], [0.0, -2.0, 1.0])
  assert int(state.comm.sent[0]) == 4 + 1 and int(state.comm.rounds[0]) == 3  # 1 float32 + 1 uint8 index


def test_ef21_w_first_steps_by_hand():
  # L = (1, 3): w = (1/4, 3/4), n w = (1/2, 3/2); workers track grad f_i / (n w_i).
  g = jnp.array([[[1.0, 2.0], [2.0, 2.0]], [[3.0, 0.0], [3.0, 3.0]]])
  out, state = axis.run(scan_rounds(ef.ef21_w(C.top_k(1), [1.0, 3.0], axis_name='w')), 2, axis_name='w')(g)
  # Round 0 (dense): g_0 = [2, 4], g_1 = [2, 0]; g = 1/4 [2, 4] + 3/4 [2, 0] = [2, 1] = mean grad.
  # Round 1: worker 0 target [4, 4], diff [2, 0] -> c0 = [2, 0]; worker 1 target [2, 2], diff [0, 2] -> [0, 2].
  #          g = [2, 1] + 1/4 [2, 0] + 3/4 [0, 2] = [2.5, 2.5].
  np.testing.assert_allclose(out[0], [[2.0, 1.0], [2.5, 2.5]], rtol=1e-6)
  np.testing.assert_allclose(state.worker[0], [4.0, 4.0])
  np.testing.assert_allclose(state.worker[1], [2.0, 2.0])


def test_ef21_server_estimate_is_the_weighted_mean_of_worker_estimates():
  n = 4
  g = jax.random.normal(jax.random.key(0), (n, 5, 10))
  L = np.linspace(1.0, 20.0, n)
  for tx, w in [(ef.ef21(C.top_k(2), axis_name='w', init='zero'), np.full(n, 1 / n)),
                (ef.ef21_w(C.random_k(3), L, axis_name='w'), L / L.sum())]:
    _, state = axis.run(scan_rounds(tx), n, axis_name='w')(g)
    want = np.tensordot(w, np.asarray(state.worker, np.float64), 1)
    for i in range(n):
      np.testing.assert_allclose(state.server[i], want, rtol=1e-5, atol=1e-6)
  # Equal constants: EF21-W is EF21.
  a = axis.run(scan_rounds(ef.ef21(C.top_k(2), axis_name='w')), n, axis_name='w')(g)[0]
  b = axis.run(scan_rounds(ef.ef21_w(C.top_k(2), np.full(n, 3.0), axis_name='w')), n, axis_name='w')(g)[0]
  np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_stepsize_by_hand_and_bad_input():
  # alpha = 0.5: theta = 1 - 1/sqrt2, beta = 0.5/theta, sqrt(beta/theta) = sqrt(0.5)/theta = 1 + sqrt2.
  r = 1 + np.sqrt(2)
  assert ef.ef21_stepsize(1.0, [1.0, 3.0], 0.5) == pytest.approx(1 / (1 + np.sqrt(5) * r))
  assert ef.ef21_stepsize(1.0, [1.0, 3.0], 0.5, weighted=True) == pytest.approx(1 / (1 + 2 * r))
  assert ef.ef21_stepsize(2.0, [1.0, 3.0], 1.0) == pytest.approx(0.5)  # no compression: 1/L
  with pytest.raises(ValueError, match='smoothness'):
    ef.ef21_w(C.top_k(1), [1.0, -2.0], axis_name='w')
  with pytest.raises(ValueError, match='alpha'):
    ef.ef21_stepsize(1.0, [1.0], 0.0)
  with pytest.raises(ValueError, match='init'):
    ef.ef21(C.top_k(1), axis_name='w', init='random')
  with pytest.raises(TypeError, match='Compressor'):
    ef.ef21('top_k', axis_name='w')
  tx = ef.ef21_w(C.top_k(1), [1.0, 2.0, 3.0], axis_name='w')
  with pytest.raises(ValueError, match='3 constants'):
    axis.run(lambda g: tx.update(g, tx.init(g))[0], 2, axis_name='w')(jnp.ones((2, 3)))


def _heterogeneous_logreg(n=4, m=40, d=20, spread=30.0, seed=0):
  """Logistic regression, worker i's features scaled by s_i in [1, spread]: L_i = s_i^2 lambda_max(A_i^T A_i)/(4m)."""
  rng = np.random.default_rng(seed)
  scales = np.geomspace(1.0, spread, n)
  a = rng.normal(size=(n, m, d)) * scales[:, None, None] / np.sqrt(d)
  b = np.sign(rng.normal(size=(n, m)))
  L_i = np.array([np.linalg.eigvalsh(a[i].T @ a[i]).max() / (4 * m) for i in range(n)])
  all_a = a.reshape(-1, d)
  L = np.linalg.eigvalsh(all_a.T @ all_a).max() / (4 * n * m)
  return jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32), L, L_i


def test_ef21_w_beats_ef21_with_theory_step_sizes_on_heterogeneous_smoothness():
  """The paper's claim: with heterogeneous L_i, EF21-W's larger (L_AM) step reaches a smaller |grad f|^2."""
  a, b, L, L_i = _heterogeneous_logreg()
  n, _, d = a.shape
  alpha = 1 / d  # top-1

  def loss(x, a, b):
    return jnp.mean(jnp.logaddexp(0.0, -b * (a @ x)))

  def train(tx, gamma, steps=400):
    def worker(a, b):
      x = jnp.zeros(d)
      opt = optax.chain(tx, optax.sgd(gamma))
      state = opt.init(x)

      def body(carry, _):
        x, state = carry
        g_full = jax.lax.pmean(jax.grad(loss)(x, a, b), 'w')
        u, state = opt.update(jax.grad(loss)(x, a, b), state)
        return (x + u, state), jnp.sum(g_full ** 2)

      (_, _), norms = jax.lax.scan(body, (x, state), None, length=steps)
      return norms
    return axis.run(worker, n, axis_name='w')(a, b)[0]

  g21 = ef.ef21_stepsize(L, L_i, alpha)
  g21w = ef.ef21_stepsize(L, L_i, alpha, weighted=True)
  assert g21w > 1.5 * g21  # L_QM / L_AM is large here
  n21 = train(ef.ef21(C.top_k(1), axis_name='w'), g21)
  n21w = train(ef.ef21_w(C.top_k(1), L_i, axis_name='w'), g21w)
  assert n21[-1] < 0.5 * n21[0] and n21w[-1] < 0.5 * n21w[0]  # both converge
  assert n21w[-1] < 0.7 * n21[-1], (float(n21w[-1]), float(n21[-1]))
