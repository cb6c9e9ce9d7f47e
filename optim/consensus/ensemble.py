"""Running a particle method: M independent runs of N particles, under vmap or across devices with shard_map.

The per-particle step of :mod:`optim.consensus.dynamics` talks to the other particles only through collectives on
its axis name. :func:`run_ensemble` maps it over an array of shape ``(M, N, *shape)``:

- ``backend='vmap'``: runs and particles vectorised on one device (particle axis ``'particles'``);
- ``backend='shard_map'``: the particle axis split over a 1-D device mesh, N / n_devices particles per device,
  vectorised within each device; the step's collectives then run over ``('devices', 'particles')``, both the mesh
  axis and the in-device axis, and the particle index (hence the noise) is the same as under vmap.

Both scan the T steps with ``lax.scan`` inside one jitted call and return the same numbers (tests compare them).
This is plain JAX, not :mod:`decentral.axis` (``optim`` does not import ``decentral``); the in-device ``vmap`` that
shares a collective with the mesh axis needs ``shard_map(check_vma=False)``.

>>> import jax, jax.numpy as jnp
>>> from optim.consensus.dynamics import cbo
>>> dyn = cbo(lambda x: jnp.sum(x ** 2), alpha=30.0, sigma=0.5, noise='anisotropic', dt=0.1)
>>> x0 = jax.random.uniform(jax.random.key(0), (2, 16, 3), minval=-2.0, maxval=2.0)
>>> out = run_ensemble(dyn, x0, jax.random.key(1), steps=100)
>>> out.consensus.shape, bool(jnp.all(jnp.abs(out.consensus[-1]) < 0.25))
((100, 2, 3), True)
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from optim.consensus.dynamics import ParticleDynamics

PyTree = Any
BACKENDS = ('vmap', 'shard_map')
PARTICLES = 'particles'
DEVICES = 'devices'


class EnsembleRun(NamedTuple):
  """The outcome of :func:`run_ensemble` (M runs, N particles, T steps).

  Attributes:
    x: final particle positions, ``(M, N, *shape)``.
    consensus: the consensus point seen by step t (before moving), ``(T, M, *shape)``.
    energy: the particles' energies seen by step t, ``(T, M, N)``.
    alpha: alpha used by step t, ``(T, M)``.
    particles: positions after each step ``(T, M, N, *shape)`` when ``keep_particles``, else None.
  """

  x: PyTree
  consensus: PyTree
  energy: jax.Array
  alpha: jax.Array
  particles: PyTree | None


def _scan(dynamics: ParticleDynamics, steps: int, keep_particles: bool, axis_name):
  """The T-step scan of one particle (to be vmapped over particles with ``axis_name``, then over runs)."""

  def one_run(x, key):
    def body(state, _):
      new, info = dynamics.step(state, key, axis_name=axis_name)
      out = (info.consensus, info.energy, state.alpha) + ((new.x,) if keep_particles else ())
      return new, out

    final, outs = jax.lax.scan(body, dynamics.init(x), None, length=steps)
    return final.x, outs

  return one_run


def run_ensemble(dynamics: ParticleDynamics, x0: PyTree, key: jax.Array, steps: int, *, backend: str = 'vmap',
                 devices: Sequence[jax.Device] | None = None, keep_particles: bool = False) -> EnsembleRun:
  """Runs ``dynamics`` for ``steps`` steps on M independent runs of N particles.

  Args:
    dynamics: a :class:`~optim.consensus.dynamics.ParticleDynamics` (e.g. :func:`optim.cbo`).
    x0: initial positions, leaves of shape ``(M, N, ...)``.
    key: run m uses ``fold_in(key, m)`` (and the dynamics fold in the step and the particle index).
    steps: T.
    backend: ``'vmap'`` or ``'shard_map'`` (N must be a multiple of the number of devices used).
    devices: the devices of the mesh for ``'shard_map'``; all of ``jax.devices()`` by default.
    keep_particles: also return every particle after every step (memory T x M x N x size).

  Returns:
    An :class:`EnsembleRun` with leading axes as documented there.
  """
  if backend not in BACKENDS:
    raise ValueError(f'run_ensemble: backend must be one of {BACKENDS}, got {backend!r}')
  shapes = {np.shape(leaf)[:2] for leaf in jax.tree.leaves(x0)}
  if len(shapes) != 1 or len(next(iter(shapes))) != 2:
    raise ValueError(f'run_ensemble: x0 leaves must share leading axes (M runs, N particles), got {shapes}')
  (m, n), = shapes
  keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(m))
  if backend == 'vmap':
    per_particle = _scan(dynamics, steps, keep_particles, PARTICLES)
    mapped = jax.vmap(jax.vmap(per_particle, in_axes=(0, None), axis_name=PARTICLES), in_axes=(0, 0))
    x, outs = jax.jit(mapped)(x0, keys)
  else:
    devices = list(devices if devices is not None else jax.devices())
    if n % len(devices):
      raise ValueError(f'run_ensemble: shard_map splits the N={n} particles over {len(devices)} devices; '
                       'N must be a multiple of the number of devices')
    mesh = Mesh(np.asarray(devices), (DEVICES,))
    per_particle = _scan(dynamics, steps, keep_particles, (DEVICES, PARTICLES))
    local = jax.vmap(jax.vmap(per_particle, in_axes=(0, None), axis_name=PARTICLES), in_axes=(0, 0))
    # Every output is per particle (M, N, ...): split on N like the input.
    out_specs = (P(None, DEVICES), (P(None, DEVICES),) * (4 if keep_particles else 3))
    mapped = jax.shard_map(local, mesh=mesh, in_specs=(P(None, DEVICES), P()), out_specs=out_specs,
                           check_vma=False)
    x0 = jax.device_put(x0, NamedSharding(mesh, P(None, DEVICES)))
    x, outs = jax.jit(mapped)(x0, keys)
  # The scan stacks T inside each (run, particle): move T to the front, keep one copy of the shared quantities.
  consensus = jax.tree.map(lambda c: jnp.moveaxis(c[:, 0], 1, 0), outs[0])
  energy = jnp.moveaxis(outs[1], 2, 0)
  alpha = jnp.moveaxis(outs[2][:, 0], 1, 0)
  particles = jax.tree.map(lambda p: jnp.moveaxis(p, 2, 0), outs[3]) if keep_particles else None
  return EnsembleRun(x, consensus, energy, alpha, particles)
