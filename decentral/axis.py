"""The worker axis: one per-worker step, run for n workers by vmap, shard_map or pmap.

A distributed algorithm is written once, for one worker, with named-axis collectives (``lax.psum``,
``lax.pmean``, ``lax.all_gather``, ``lax.ppermute``, ``lax.axis_index``) on ``axis_name``. :func:`run` turns it
into a function of stacked arguments (leading axis of size n, one slice per worker) by one of three backends:

- ``'vmap'``: n simulated workers on one device, exact; what tests and theory use.
- ``'shard_map'``: one worker per device of a 1-D mesh; the production path on GPUs and TPUs.
- ``'pmap'``: the legacy per-device map.

All three give the same numbers (``tests/decentral/test_axis.py``).

Across processes (JAX's multi-controller runtime, one process per host: :func:`decentral.processes.initialize`),
``'shard_map'`` and ``'pmap'`` run unchanged on the global devices. Each of the P processes holds n / P workers
(process p the workers ``p n / P`` to ``(p + 1) n / P - 1``), passes only its own workers' rows of every stacked
argument and gets its own workers' rows back; shared arguments must be equal on every process. Collectives, worker
indices and keys are global, so the numbers are those of one process with n workers
(``tests/decentral/test_multiprocess.py`` checks it with real processes). ``'vmap'`` stays inside one process.
Every call first checks that all processes called with the same n, backend, axis and argument shapes, and raises
a ValueError naming the difference instead of hanging in a collective.

>>> import jax, jax.numpy as jnp
>>> from jax import lax
>>> centre = lambda x: x - lax.pmean(x, 'workers')
>>> run(centre, 4)(jnp.arange(4.0))
Array([-1.5, -0.5,  0.5,  1.5], dtype=float32)

Trap (DESIGN.md): under ``shard_map`` the gradient of a parameter that is *replicated* over the axis comes back
already summed over the workers; a later ``pmean`` does not undo it. Give each worker its own (varying) copy of
the parameters, as :func:`run` does for every stacked argument, or call :func:`varying` on a replicated value
before differentiating with respect to it.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from decentral import checks, processes

BACKENDS = ('vmap', 'shard_map', 'pmap')


def run(step: Callable[..., Any], n: int, *, axis_name: str = 'workers', backend: str = 'vmap',
        in_axes: int | None | Sequence[int | None] = 0, devices: Sequence[jax.Device] | None = None
        ) -> Callable[..., Any]:
  """Maps the per-worker ``step`` over n workers on ``axis_name``.

  Args:
    step: the per-worker function; it may use collectives on ``axis_name``.
    n: number of workers. ``'shard_map'`` and ``'pmap'`` need n devices (one worker per device).
    axis_name: the name of the worker axis used inside ``step``.
    backend: one of ``'vmap'``, ``'shard_map'``, ``'pmap'``.
    in_axes: per positional argument, 0 if it is stacked over workers, None if it is shared by all (vmap and
      pmap also take another axis index; shard_map only 0 or None).
    devices: the devices for ``'shard_map'``/``'pmap'``; the first n of ``jax.devices()`` by default.

  Returns:
    A function of the stacked arguments returning stacked outputs (leading axis n), jitted.
  """
  if backend not in BACKENDS:
    raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}')
  checks.positive_int(n, 'n')
  if backend == 'vmap':
    return jax.jit(jax.vmap(step, in_axes=in_axes, axis_name=axis_name, axis_size=n))
  mesh = worker_mesh(n, axis_name=axis_name, devices=devices, backend=backend)
  devices = list(mesh.devices)
  if backend == 'pmap':
    mapped = jax.pmap(step, axis_name=axis_name, in_axes=in_axes, devices=devices)
  else:
    mapped = _shard_mapped(step, mesh, in_axes)
  if jax.process_count() > 1:
    return _across_processes(mapped, mesh, in_axes, n, backend)
  return _on_mesh(mapped, mesh, in_axes, n)


def worker_mesh(n: int, *, axis_name: str = 'workers', devices: Sequence[jax.Device] | None = None,
                backend: str = 'shard_map') -> Mesh:
  """The 1-D mesh of n workers that :func:`run` uses: one device per worker, the first n of ``devices`` (of
  ``jax.devices()`` by default); across P processes, n / P devices of each process, in process order.

  For placing or checkpointing stacked state the way ``run`` sees it (e.g. ``NamedSharding(mesh, P(axis_name))``).
  """
  return Mesh(np.asarray(_worker_devices(n, devices, backend)), (axis_name,))


def _worker_devices(n, devices, backend):
  count = jax.process_count()
  if devices is None and count > 1:
    if n % count:
      raise ValueError(f'backend {backend!r} across {count} processes needs n divisible by the process count, '
                       f'got n={n}')
    by_process = [sorted((d for d in jax.devices() if d.process_index == p), key=lambda d: d.id)
                  for p in range(count)]
    if min(map(len, by_process)) < n // count:
      raise ValueError(f'backend {backend!r} needs n / processes = {n // count} devices in every process, found '
                       f'{[len(d) for d in by_process]}')
    return [d for local in by_process for d in local[:n // count]]
  devices = list(devices if devices is not None else jax.devices())
  if len(devices) < n:
    raise ValueError(f'backend {backend!r} needs n={n} devices (one worker each), found {len(devices)}; '
                     'set XLA_FLAGS=--xla_force_host_platform_device_count or use backend="vmap"')
  return devices[:n]


def _axes_of(in_axes, args):
  axes = in_axes if isinstance(in_axes, (list, tuple)) else (in_axes,) * len(args)
  if len(axes) != len(args):
    raise ValueError(f'in_axes has {len(axes)} entries for {len(args)} arguments')
  return axes


def _on_mesh(mapped, mesh, in_axes, n):
  """``mapped`` with its inputs first placed on ``mesh`` the way its outputs come back.

  An array's sharding is part of its type: without this, a loop that feeds the outputs of one step into the next
  would trace (and compile) the step a second time on its second call. Stacked inputs are split over the axis,
  shared ones replicated; inputs mapped along another axis (pmap's ``in_axes=1``) are left as they are.
  """
  (axis_name,) = mesh.axis_names

  @functools.wraps(mapped)
  def placed(*args):
    axes = _axes_of(in_axes, args)
    _check_leading(args, axes, n)
    return mapped(*(jax.device_put(arg, NamedSharding(mesh, P(axis_name) if a == 0 else P()))
                    if a in (0, None) else arg for arg, a in zip(args, axes)))

  return placed


def _across_processes(mapped, mesh, in_axes, n, backend):
  """``mapped`` over a mesh spanning processes: each process passes and gets back its own workers' rows."""
  (axis_name,) = mesh.axis_names
  local = n // jax.process_count()

  @functools.wraps(mapped)
  def placed(*args):
    axes = _axes_of(in_axes, args)
    _check_leading(args, axes, local)
    processes.agree(_signature(args, axes, n, backend, axis_name), 'decentral.axis.run')
    if backend == 'pmap':  # pmap takes each process's local rows as they are
      return mapped(*args)
    specs = tuple(P(axis_name) if a == 0 else P() for a in axes)
    inputs = multihost_utils.host_local_array_to_global_array(args, mesh, specs)
    return multihost_utils.global_array_to_host_local_array(mapped(*inputs), mesh, P(axis_name))

  return placed


def _signature(args, axes, n, backend, axis_name) -> str:
  shapes = [jax.tree.map(lambda x: (np.shape(x), str(jax.typeof(x).dtype) if hasattr(x, 'dtype') else 'py'), arg)
            for arg in args]
  return f'n={n} backend={backend} axis={axis_name!r} in_axes={tuple(axes)} args={shapes}'


def _shard_mapped(step, mesh, in_axes):
  for a in (in_axes if isinstance(in_axes, (list, tuple)) else (in_axes,)):
    if a not in (0, None):  # shard_map splits the leading axis only
      raise ValueError(f'shard_map: in_axes entries must be 0 (stacked) or None (shared), got {a!r}')
  (axis_name,) = mesh.axis_names

  def call(*args):
    axes = _axes_of(in_axes, args)
    specs = tuple(P(axis_name) if a == 0 else P() for a in axes)

    def per_device(*blocks):
      # Each device holds a block of one worker: drop the block axis, run the step, put it back.
      squeezed = [jax.tree.map(lambda x: x[0], b) if a == 0 else b for b, a in zip(blocks, axes)]
      return jax.tree.map(lambda y: y[None], step(*squeezed))

    mapped = jax.shard_map(per_device, mesh=mesh, in_specs=specs, out_specs=P(axis_name))
    return mapped(*args)

  return jax.jit(call)


def _check_leading(args, axes, n):
  for i, (arg, a) in enumerate(zip(args, axes)):
    if a != 0:
      continue
    for leaf in jax.tree.leaves(arg):
      if np.ndim(leaf) == 0 or np.shape(leaf)[0] != n:
        raise ValueError(f'argument {i} must be stacked over the worker axis (leading size n={n}), '
                         f'got a leaf of shape {np.shape(leaf)}')


def varying(tree: Any, axis_name: str | None) -> Any:
  """Marks a value replicated over ``axis_name`` as varying per worker (a no-op outside ``shard_map``).

  Differentiate with respect to the result to get each worker's own gradient rather than the sum over
  workers that ``shard_map`` returns for a replicated parameter. The same cast makes the branches of a
  ``lax.cond`` agree on which manual axes their outputs vary over (a branch that all-reduces returns invariant
  values, the other per-worker state), and keeps an optimizer state's type fixed so it can be the carry of a
  ``lax.scan``. Outside a manual axis (vmap, pmap, ``axis_name=None`` for one worker) this is the identity.
  """
  manual = getattr(jax.sharding.get_abstract_mesh(), 'manual_axes', ())
  if axis_name is None or axis_name not in manual:
    return tree  # vmap and pmap have no replicated/varying distinction to mend

  def cast(x):
    x = jnp.asarray(x)
    if axis_name in _varying_axes(x):  # already varying: pcast would fail
      return x
    return lax.pcast(x, axis_name, to='varying')

  return jax.tree.map(cast, tree)


def _varying_axes(x) -> frozenset:
  aval = jax.typeof(x)
  mat = getattr(aval, 'mat', None)  # jax >= 0.9: the manual axis type; earlier: aval.vma
  return frozenset(getattr(mat, 'varying', None) or getattr(aval, 'vma', None) or ())


def axis_size(axis_name: str) -> int:
  """The number of workers on ``axis_name`` (static)."""
  return lax.axis_size(axis_name) if hasattr(lax, 'axis_size') else lax.psum(1, axis_name)


def worker_index(axis_name: str) -> jax.Array:
  """This worker's index on ``axis_name``."""
  return lax.axis_index(axis_name)


def worker_key(key: jax.Array, count: int | jax.Array, axis_name: str | None) -> jax.Array:
  """``fold_in(fold_in(key, count), worker_index)``: a key of its own for every worker and round.

  Randomised compressors and samplers draw from it, so draws are independent across workers and rounds and one
  seed gives one result. ``axis_name=None`` (one worker, no axis) folds in the round only.
  """
  key = jax.random.fold_in(key, count)
  return key if axis_name is None else jax.random.fold_in(key, worker_index(axis_name))


def all_gather(tree: Any, axis_name: str) -> Any:
  """Stacks every worker's ``tree`` along a new leading axis (the same result on every worker)."""
  return jax.tree.map(functools.partial(lax.all_gather, axis_name=axis_name), tree)
