"""One per-worker step run on a two-dimensional (replica x stage) mesh, by vmap or shard_map.

The two-axis counterpart of :func:`decentral.axis.run`: the step is written for one worker, which is stage s of
replica r, and uses collectives on both axes (``lax.ppermute`` on the stage axis between pipeline stages,
``lax.pmean`` on the replica axis for the outer step). Stacked arguments carry two leading axes [R, S, ...]
(worker (r, s) gets row [r, s]); shared ones (``in_axes`` None) go to every worker. Outputs come back stacked
[R, S, ...]. ``'vmap'`` nests two vmaps (exact, one device); ``'shard_map'`` puts worker (r, s) on device
r S + s of a 2-D mesh of R S devices.

Across P processes (:func:`decentral.processes.initialize`), ``'shard_map'`` runs on the global devices: process
p holds the R / P replicas ``p R / P`` to ``(p + 1) R / P - 1`` (all their stages, on R S / P of its devices),
passes only their rows [R / P, S, ...] of every stacked argument and gets their rows back; shared arguments must
be equal on every process. Collectives are global, so the numbers are those of one process with R replicas.

>>> import jax.numpy as jnp
>>> from jax import lax
>>> f = lambda x: lax.pmean(x, 'replica') + lax.psum(x, 'stage')
>>> run(f, 2, 3)(jnp.arange(6.0).reshape(2, 3)).tolist()
[[4.5, 5.5, 6.5], [13.5, 14.5, 15.5]]
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from decentral import checks, processes

BACKENDS = ('vmap', 'shard_map')


def replica_stage_mesh(replicas: int, stages: int, *, axis_names: tuple[str, str] = ('replica', 'stage'),
                       devices: Sequence[jax.Device] | None = None) -> Mesh:
  """The R x S device mesh :func:`run` uses (the first R S devices, replica-major; across P processes, R S / P
  devices of each process, in process order, so every process holds whole replicas)."""
  count = jax.process_count()
  if devices is None and count > 1:
    if replicas % count:
      raise ValueError(f'decentral.pipeline.mesh: replicas={replicas} must be divisible by the {count} processes')
    local = replicas // count * stages
    by_process = [sorted((d for d in jax.devices() if d.process_index == p), key=lambda d: d.id)
                  for p in range(count)]
    if min(map(len, by_process)) < local:
      raise ValueError(f'decentral.pipeline.mesh: every process needs {local} devices, found '
                       f'{[len(d) for d in by_process]}')
    devices = [d for mine in by_process for d in mine[:local]]
  devices = list(devices if devices is not None else jax.devices())
  if len(devices) < replicas * stages:
    raise ValueError(f'decentral.pipeline.mesh: shard_map needs replicas x stages = {replicas * stages} devices, '
                     f'found {len(devices)}; set XLA_FLAGS=--xla_force_host_platform_device_count or use vmap')
  return Mesh(np.asarray(devices[:replicas * stages]).reshape(replicas, stages), axis_names)


def run(step: Callable[..., Any], replicas: int, stages: int, *, axis_names: tuple[str, str] = ('replica', 'stage'),
        backend: str = 'vmap', in_axes: int | None | Sequence[int | None] = 0,
        devices: Sequence[jax.Device] | None = None) -> Callable[..., Any]:
  """Maps the per-worker ``step`` over R replicas x S stages; returns a jitted function of stacked arguments.

  Args:
    step: the per-worker function; collectives on ``axis_names[0]`` (replicas) and ``axis_names[1]`` (stages).
    replicas, stages: R and S.
    axis_names: the names of the two axes.
    backend: ``'vmap'`` or ``'shard_map'``.
    in_axes: per positional argument, 0 (stacked [R, S, ...]) or None (shared).
    devices: the devices of the shard_map mesh (the first R S of ``jax.devices()`` by default).
  """
  if backend not in BACKENDS:
    raise ValueError(f'decentral.pipeline.mesh.run: backend must be one of {BACKENDS}, got {backend!r}')
  replicas = checks.positive_int(replicas, 'replicas')
  stages = checks.positive_int(stages, 'stages')
  rep, stg = axis_names
  if backend == 'vmap':
    inner = jax.vmap(step, in_axes=in_axes, axis_name=stg, axis_size=stages)
    return _checked(jax.jit(jax.vmap(inner, in_axes=in_axes, axis_name=rep, axis_size=replicas)), in_axes,
                    (replicas, stages))
  mesh = replica_stage_mesh(replicas, stages, axis_names=axis_names, devices=devices)

  def call(*args):
    axes = _axes_of(in_axes, args)
    specs = tuple(P(rep, stg) if a == 0 else P() for a in axes)

    def per_device(*blocks):
      # Each device holds a [1, 1, ...] block: drop the two block axes, run the step, put them back.
      squeezed = [jax.tree.map(lambda x: x[0, 0], b) if a == 0 else b for b, a in zip(blocks, axes)]
      return jax.tree.map(lambda y: y[None, None], step(*squeezed))

    return jax.shard_map(per_device, mesh=mesh, in_specs=specs, out_specs=P(rep, stg))(*args)

  jitted = jax.jit(call)
  if jax.process_count() > 1:
    return _across_processes(jitted, mesh, in_axes, (replicas, stages))

  @functools.wraps(call)
  def placed(*args):
    axes = _axes_of(in_axes, args)
    _check_leading(args, axes, (replicas, stages))
    # Place inputs as the outputs come back, so feeding outputs into the next call does not recompile.
    return jitted(*(jax.device_put(x, NamedSharding(mesh, P(rep, stg) if a == 0 else P()))
                    for x, a in zip(args, axes)))

  return placed


def _across_processes(jitted, mesh, in_axes, lead):
  """``jitted`` over a mesh spanning processes: each process passes and gets back its own replicas' rows."""
  rep, stg = mesh.axis_names
  local = (lead[0] // jax.process_count(), lead[1])

  @functools.wraps(jitted)
  def placed(*args):
    axes = _axes_of(in_axes, args)
    _check_leading(args, axes, local)
    shapes = [jax.tree.map(lambda x: (np.shape(x), str(np.asarray(x).dtype) if not hasattr(x, 'dtype')
                                      else str(x.dtype)), a) for a in args]
    processes.agree(f'mesh={lead} axes={mesh.axis_names} in_axes={tuple(axes)} args={shapes}',
                    'decentral.pipeline.mesh.run')
    specs = tuple(P(rep, stg) if a == 0 else P() for a in axes)
    inputs = multihost_utils.host_local_array_to_global_array(args, mesh, specs)
    return multihost_utils.global_array_to_host_local_array(jitted(*inputs), mesh, P(rep, stg))

  return placed


def _axes_of(in_axes, args):
  axes = in_axes if isinstance(in_axes, (list, tuple)) else (in_axes,) * len(args)
  if len(axes) != len(args):
    raise ValueError(f'decentral.pipeline.mesh.run: in_axes has {len(axes)} entries for {len(args)} arguments')
  for a in axes:
    if a not in (0, None):
      raise ValueError(f'decentral.pipeline.mesh.run: in_axes entries must be 0 (stacked) or None, got {a!r}')
  return axes


def _check_leading(args, axes, lead):
  for i, (arg, a) in enumerate(zip(args, axes)):
    if a != 0:
      continue
    for leaf in jax.tree.leaves(arg):
      if np.shape(leaf)[:2] != lead:
        raise ValueError(f'decentral.pipeline.mesh.run: argument {i} must be stacked [replicas, stages, ...] = '
                         f'{list(lead)} + ..., got a leaf of shape {np.shape(leaf)}')


def _checked(fn, in_axes, lead):
  @functools.wraps(fn)
  def checked(*args):
    _check_leading(args, _axes_of(in_axes, args), lead)
    return fn(*args)

  return checked
