"""Replays the stored trajectories of the authors' PyTorch optimizers (fixtures/elementwise_*.npz) in JAX.

The fixtures hold, in PyTorch layout, the initial parameters, the gradient the official optimizer received at
each of 30 steps and its parameters after each step (README.md in fixtures/ says how they were made). Here the
tensors are moved to flax layout (output channel last), our optimizer is fed the same gradients, and the
trajectories are returned side by side in PyTorch layout.
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import optax

FIXTURES = pathlib.Path(__file__).parent / 'fixtures'
# PyTorch layout -> flax layout: Linear (out, in) -> Dense (in, out); Conv2d (o, c, h, w) -> Conv (h, w, c, o).
TO_FLAX = {'W1': (1, 0), 'K': (2, 3, 1, 0), 'V': (1, 0), 'W2': (1, 0)}


def _to_flax(name, x, leading=0):
  perm = TO_FLAX.get(name)
  if perm is None:
    return x
  return np.transpose(x, tuple(range(leading)) + tuple(p + leading for p in perm))


def _to_torch(name, x, leading=0):
  perm = TO_FLAX.get(name)
  if perm is None:
    return x
  inverse = tuple(int(i) for i in np.argsort(perm))
  return np.transpose(x, tuple(range(leading)) + tuple(p + leading for p in inverse))


def load(name: str) -> tuple[dict, dict, dict, dict]:
  """``(init, grads, params, hyperparameters)``; init in flax layout, grads (T, ...) flax, params (T, ...) torch."""
  data = np.load(FIXTURES / f'elementwise_{name}.npz')
  names = sorted({k.split('/')[0] for k in data.files if not k.startswith('hp/')})
  init = {n: _to_flax(n, data[f'{n}/init']) for n in names}
  grads = {n: _to_flax(n, data[f'{n}/grads'], leading=1) for n in names}
  params = {n: data[f'{n}/params'] for n in names}
  hp = {k[3:]: data[k].item() if data[k].ndim == 0 else tuple(data[k].tolist()) for k in data.files
        if k.startswith('hp/')}
  return init, grads, params, hp


def replay(tx: optax.GradientTransformation, init: dict, grads: dict, layout: str = 'flax') -> dict:
  """Runs ``tx`` on the recorded gradients (float64, one jitted scan); the trajectory in PyTorch layout.

  ``layout='torch'`` runs on the PyTorch-layout tensors themselves (no transposition either way).
  """
  if layout == 'torch':
    init = {n: _to_torch(n, x) for n, x in init.items()}
    grads = {n: _to_torch(n, x, leading=1) for n, x in grads.items()}
  def step(carry, g):
    params, state = carry
    updates, state = tx.update(g, state, params)
    params = optax.apply_updates(params, updates)
    return (params, state), params

  params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), init)
  grads = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), grads)
  _, traj = jax.jit(lambda p, g: jax.lax.scan(step, (p, tx.init(p)), g))(params, grads)
  if layout == 'torch':
    return {n: np.asarray(x) for n, x in traj.items()}
  return {n: _to_torch(n, np.asarray(x), leading=1) for n, x in traj.items()}


def assert_trajectories_match(ours: dict, reference: dict, rtol: float = 1e-10, atol: float = 1e-12) -> None:
  assert set(ours) == set(reference)
  for n in reference:
    np.testing.assert_allclose(ours[n], reference[n], rtol=rtol, atol=atol, err_msg=f'parameter {n}')


def _matrix_to_flax(name, x, leading=0):
  # The matrix fixtures (fixtures/make_matrix.py) hold only Linear weights W* in PyTorch's (out, in) layout.
  return np.swapaxes(x, leading, leading + 1) if name.startswith('W') else x


def assert_matches_matrix_fixture(tx: optax.GradientTransformation, fixture: str, names,
                                  layout: str = 'flax') -> None:
  """Feeds ``tx`` the gradients of ``fixtures/<fixture>.npz`` step by step (float64, jitted) and checks each
  step's parameters against the authors' optimizer to 1e-10 relative; ``layout='torch'`` keeps the matrices in
  PyTorch's (out, in) layout."""
  ref = np.load(FIXTURES / f'{fixture}.npz')
  to_flax = _matrix_to_flax if layout == 'flax' else lambda name, x, leading=0: x
  params = {k: jnp.asarray(to_flax(k, ref[f'{k}/init'])) for k in names}
  state = tx.init(params)
  update = jax.jit(tx.update)
  for t in range(ref[f'{names[0]}/grads'].shape[0]):
    grads = {k: jnp.asarray(to_flax(k, ref[f'{k}/grads'][t])) for k in names}
    updates, state = update(grads, state, params)
    params = optax.apply_updates(params, updates)
    for k in names:
      want = to_flax(k, ref[f'{k}/params'][t])
      assert np.max(np.abs(np.asarray(params[k]) - want)) <= 1e-10 * np.max(np.abs(want)), (k, t)
