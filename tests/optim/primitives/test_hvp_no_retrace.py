"""Eager Hessian-vector products are jitted once: new points, data and vectors of the same shapes never retrace."""

from __future__ import annotations

import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import numpy as np

from optim.primitives import curvature

TRACES = []


def _loss(params, x, y):
  TRACES.append(1)  # runs once per trace of the loss, never when a compiled function runs
  return jnp.mean((jnp.tanh(x @ params['w']) @ params['v'] - y) ** 2)


@jax.jit
def _dense_hessian(params, x, y):
  flat, unravel = ravel_pytree(params)
  return jax.hessian(lambda f: _loss(unravel(f), x, y))(flat)


def test_hessian_matvec_and_hvp_trace_once_across_points_data_and_vectors(x64):
  rng = np.random.default_rng(0)
  point = lambda: {'w': rng.normal(size=(3, 4)), 'v': rng.normal(size=4)}
  data = lambda: (rng.normal(size=(8, 3)), rng.normal(size=8))
  checks = []
  counts = []
  for _ in range(3):
    params, (x, y) = point(), data()
    mv = curvature.hessian_matvec(_loss, params, x, y)
    for _ in range(3):
      v = point()
      checks.append((params, x, y, v, mv(v), curvature.hvp(_loss, params, v, x, y)))
    counts.append(len(TRACES))
  assert counts[0] > 0 and counts[0] == counts[1] == counts[2]  # everything traced in the first round only
  for params, x, y, v, by_matvec, by_hvp in checks:  # and every product is the right one
    h = np.asarray(_dense_hessian(params, x, y))
    flat_v = ravel_pytree(v)[0]
    for out in (by_matvec, by_hvp):
      np.testing.assert_allclose(ravel_pytree(out)[0], h @ flat_v, rtol=1e-10, atol=1e-12)


def test_under_jit_the_product_is_inlined(x64):
  # Inside a trace the closure is the plain linearisation: a tracer never reaches the eager cache.
  params = {'w': jnp.ones((3, 4)), 'v': jnp.ones(4)}
  x, y = jnp.ones((8, 3)), jnp.zeros(8)
  out = jax.jit(lambda p: curvature.hessian_matvec(_loss, p, x, y)(p))(params)
  eager = curvature.hessian_matvec(_loss, params, x, y)(params)
  np.testing.assert_allclose(out['w'], eager['w'], rtol=1e-12)
