"""The worker-axis contract made executable: every transform in ``decentral.registry.transforms`` runs through it,
and every aggregation rule of ``decentral.registry.rules`` through the ``aggregate`` transform.

A method joins by a line in ``decentral/registry.py``; nothing here names one, so a new entry is checked the moment
it is registered, and its tags say how it is called (``'needs_params'``, ``'direction'``, ...; listed there). The
problem: n = 8 workers, each with its own copy of a small nested tree (a matrix, a vector, a scalar; equal at the
start, as local SGD and Just One Byte assume) and its own smooth loss, so per-worker state really differs. Checks:

- the step traces once and is reused for later steps, under vmap, shard_map and pmap;
- vmap = shard_map = pmap on the 8 virtual CPU devices (parameters, updates and state);
- bf16 parameters give bf16 updates and parameters, and a state whose dtypes do not drift (traced with
  ``jax.eval_shape``: dtypes are fixed at trace time, so no compilation is needed);
- the state goes through an orbax save and restore and the run continues bit-identically;
- clear errors: a transform built for axis 'workers' run on another axis names 'workers'; an updates tree of
  another structure raises a ValueError naming the transform (or, for a method tagged 'stateless', passes through
  with its own structure); a method
  tagged 'needs_params' called without them says so; a rule asked to tolerate f >= n/2 says so.

Compilation dominates the time: each case compiles its step once per backend (``_trajectory``) and every check
reuses it. A-EDiT is a host-driven runner rather than a transform; it has its own test at the end. The optimizer
contract is ``tests/optim/test_conformance_optim.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import numbers
import re
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from decentral import axis, registry
from decentral.local_sgd import run_a_edit
from optim.registry import Entry

N = 8  # workers; the registered defaults (a ring of 8, EF21-W's 8 constants) are sized for it
AXIS = 'workers'
STEPS = 3
LR = 0.1  # the learning rate chained after the transforms tagged 'direction'


@dataclasses.dataclass(frozen=True)
class Case:
  """One registered transform, built with ``overrides`` (a rule for those tagged 'each_rule')."""

  name: str
  entry: Entry
  overrides: dict[str, Any]
  tags: frozenset[str]


def _cases():
  cases = {}
  for entry in registry.transforms.entries():
    if 'each_rule' in entry.tags:
      for rule in registry.rules.names():
        cases[f'{entry.name}:{rule}'] = Case(f'{entry.name}:{rule}', entry, {'rule': registry.rules.build(rule)},
                                             entry.tags)
    else:
      cases[entry.name] = Case(entry.name, entry, {}, entry.tags)
  return cases


CASES = _cases()


# ---------------------------------------------------------------------------------------------- the problem


@functools.cache
def _params(dtype=jnp.float32):
  """Every worker's parameters, stacked: the same nested tree of a matrix, a vector and a scalar on each."""
  one = {'dense': {'w': jax.random.normal(jax.random.key(0), (4, 3)), 'b': jnp.linspace(-1.0, 1.0, 3)},
         'scale': jnp.asarray(1.5)}
  return jax.tree.map(lambda x: jnp.broadcast_to(x.astype(dtype), (N,) + x.shape), one)


@functools.cache
def _data(t=0):
  """Worker i's loss: targets c_i (one per leaf), curvature a_i, and the step t (for oracle keys)."""
  leaves, treedef = jax.tree.flatten(_params())
  keys = jax.random.split(jax.random.key(7), len(leaves))
  targets = jax.tree.unflatten(treedef, [jax.random.normal(k, x.shape) for k, x in zip(keys, leaves)])
  return targets, 0.5 + jnp.arange(N, dtype=jnp.float32) / N, jnp.full((N,), t, jnp.int32)


def _loss(params, targets, curvature):
  """a_i / 2 |x - c_i|^2 + sum log cosh(x - c_i): smooth, not quadratic, touching every leaf."""
  total = 0.0
  for x, c in zip(jax.tree.leaves(params), jax.tree.leaves(targets)):
    r = x.astype(jnp.float32) - c
    total = total + jnp.sum(0.5 * curvature * r * r + jnp.log(jnp.cosh(r)))
  return total


@functools.cache
def _tx(name, **build):
  """The case's transform on axis 'workers' (``build`` overrides), a learning rate chained after a direction."""
  case = CASES[name]
  tx = case.entry.build(axis_name=AXIS, **{**case.overrides, **build})
  return optax.chain(tx, optax.scale_by_learning_rate(LR)) if 'direction' in case.tags else tx


def _update(case, tx, grads, state, params, loss_fn, t):
  """``tx.update`` called as the case's tags say, with its oracles."""
  extra = case.entry.oracles(loss_fn=loss_fn, params=params, key=jax.random.fold_in(jax.random.key(1), t))
  args = (params,) if 'needs_params' in case.tags else ()
  return tx.update(grads, state, *args, **extra)


def _step_fn(case, tx, traces=None):
  """One worker's step: its gradient, the transform, the new parameters."""

  def step(params, state, targets, curvature, t):
    if traces is not None:
      traces.append(1)
    loss_fn = functools.partial(_loss, targets=targets, curvature=curvature)
    grads = jax.tree.map(lambda g, p: g.astype(p.dtype), jax.grad(loss_fn)(params), params)
    updates, state = _update(case, tx, grads, state, params, loss_fn, t)
    return optax.apply_updates(params, updates), state, updates

  return step


@dataclasses.dataclass
class Trajectory:
  run: Any        # the compiled step of this backend
  init: Any       # the compiled init (vmap)
  params: Any     # after STEPS steps
  state: Any
  updates: Any    # of the last step
  traces: int     # times the step was traced


@functools.cache
def _init(name):
  return axis.run(_tx(name).init, N, axis_name=AXIS)


@functools.cache
def _trajectory(name, backend):
  """STEPS steps from the shared initial state; compiled once per (case, backend), reused by every check."""
  case, tx, traces = CASES[name], _tx(name), []
  run = axis.run(_step_fn(case, tx, traces), N, axis_name=AXIS, backend=backend)
  params, state, updates = _params(), _init(name)(_params()), None
  for t in range(STEPS):
    params, state, updates = run(params, state, *_data(t))
  return Trajectory(run, _init(name), params, state, updates, len(traces))


def _comparable(tree):
  """PRNG keys as their raw data, so trees of states can be compared."""
  return jax.tree.map(lambda x: jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x,
                      tree)


def _uncommitted(tree):
  """The same values through the host, no longer committed to a device (orbax restores committed arrays, which
  the vmap step would compile again for)."""

  def host(x):
    if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
      return jax.random.wrap_key_data(np.asarray(jax.random.key_data(x)), impl=jax.random.key_impl(x))
    return jnp.asarray(np.asarray(x))

  return jax.tree.map(host, tree)


@pytest.fixture(params=sorted(CASES))
def case(request):
  return CASES[request.param]


# ---------------------------------------------------------------------------------------------- the checks


def test_every_method_and_rule_is_a_case():
  assert {'error_feedback', 'ef21', 'dgc', 'diloco', 'dsgd', 'monna', 'just_one_byte', 'byzantine'} <= set(CASES)
  assert {f'aggregate:{r}' for r in registry.rules.names()} <= set(CASES)
  with pytest.raises(KeyError, match='unknown worker-axis transform name'):
    registry.transforms.get('no-such-method')


@pytest.mark.parametrize('backend', axis.BACKENDS)
def test_step_traces_once(case, backend):
  traj = _trajectory(case.name, backend)
  assert traj.traces == 1, f'{case.name} traced its step {traj.traces} times in {STEPS} steps under {backend}'


def test_vmap_shard_map_pmap_agree(case):
  want = _trajectory(case.name, 'vmap')
  for backend in ('shard_map', 'pmap'):
    got = _trajectory(case.name, backend)
    for what in ('params', 'updates', 'state'):
      chex.assert_trees_all_close(_comparable(getattr(got, what)), _comparable(getattr(want, what)), rtol=1e-5,
                                  atol=1e-6, custom_message=f'{case.name}: {what} under {backend} differ from vmap')
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(want.params))
  if 'shared_update' in case.tags:  # workers that start equal stay equal
    for x in jax.tree.leaves((want.params, want.updates)):
      np.testing.assert_allclose(x, np.broadcast_to(x[:1], x.shape), rtol=1e-6, atol=1e-7, err_msg=case.name)


def test_bf16_parameters_stay_bf16(case):
  traj = _trajectory(case.name, 'vmap')
  params = _params(jnp.bfloat16)
  state = jax.eval_shape(traj.init, params)
  dtypes = []
  for t in range(2):
    params, state, updates = jax.eval_shape(traj.run, params, state, *_data(t))
    for u, p in zip(jax.tree.leaves(updates), jax.tree.leaves(params)):
      assert u.dtype == jnp.bfloat16, f'{case.name} returned an update of dtype {u.dtype} for bf16 parameters'
      assert p.dtype == jnp.bfloat16, f'{case.name} turned bf16 parameters into {p.dtype}'
    dtypes.append(jax.tree.map(lambda x: x.dtype, state))
  assert dtypes[0] == dtypes[1], f'{case.name}: the state dtypes drift under bf16 parameters'


def test_orbax_round_trip_continues_bit_identically(case, tmp_path):
  traj = _trajectory(case.name, 'vmap')
  tree = {'params': traj.params, 'state': traj.state}
  ckpt = ocp.StandardCheckpointer()
  ckpt.save(tmp_path / 'state', tree)
  ckpt.wait_until_finished()
  restored = ckpt.restore(tmp_path / 'state', jax.eval_shape(lambda: tree))
  chex.assert_trees_all_equal(_comparable(restored), _comparable(tree))
  restored = _uncommitted(restored)  # placed as the step's own outputs, so the compiled step is reused

  def go(params, state):
    for t in range(STEPS, STEPS + 2):
      params, state, _ = traj.run(params, state, *_data(t))
    return params, state

  chex.assert_trees_all_equal(_comparable(go(restored['params'], restored['state'])),
                              _comparable(go(traj.params, traj.state)))


def _first_step(case, tx, updates_of=lambda grads, params: grads):
  """A per-worker function of (params, targets, curvature, t): init, then one update of ``updates_of(...)``."""

  def go(params, targets, curvature, t):
    loss_fn = functools.partial(_loss, targets=targets, curvature=curvature)
    grads = jax.grad(loss_fn)(params)
    return _update(case, tx, updates_of(grads, params), tx.init(params), params, loss_fn, t)

  return go


def test_wrong_axis_name_is_named_in_the_error(case):
  """Built for axis 'workers', run on an axis 'other': the error names 'workers'."""
  run = axis.run(_first_step(case, _tx(case.name)), N, axis_name='other')
  with pytest.raises((NameError, ValueError)) as error:
    jax.eval_shape(run, _params(), *_data())
  assert re.search(r'\bworkers\b', str(error.value)), f'{case.name}: the error does not name the axis: {error.value}'


def test_mismatched_tree_is_rejected(case):
  """Updates of another structure than the parameters the state was built for raise a ValueError naming the
  transform, never a bare JAX tree error and never a broadcast."""

  def bad(grads, params):
    return {'dense': grads['dense'], 'other': jnp.ones(3)}

  run = axis.run(_first_step(case, _tx(case.name), bad), N, axis_name=AXIS)
  if 'stateless' in case.tags:  # nothing to compare with: then the output has the structure it was given
    try:
      out, _ = jax.eval_shape(run, _params(), *_data())
    except ValueError as error:  # a stateless entry with a stateful rule (centered clipping) has a state to check
      assert case.entry.name in str(error), f'{case.name}: the error does not name the transform: {error}'
      return
    assert jax.tree.structure(out) == jax.tree.structure(bad(_params(), None)), case.name
    return
  with pytest.raises(ValueError) as error:
    jax.eval_shape(run, _params(), *_data())
  assert case.entry.name in str(error.value), f'{case.name}: the error does not name the transform: {error.value}'


def _having(tag):
  return sorted(name for name, c in CASES.items() if tag in c.tags)


@pytest.mark.parametrize('name', _having('needs_params'))
def test_missing_params_are_asked_for(name):
  case, tx = CASES[name], _tx(name)

  def go(params, targets, curvature, t):
    loss_fn = functools.partial(_loss, targets=targets, curvature=curvature)
    extra = case.entry.oracles(loss_fn=loss_fn, params=params, key=jax.random.key(0))
    return tx.update(params, tx.init(params), **extra)

  with pytest.raises(ValueError, match='params|parameters'):
    jax.eval_shape(axis.run(go, N, axis_name=AXIS), _params(), *_data())


@pytest.mark.parametrize('name', _having('each_rule'))
def test_rule_rejects_too_many_faulty_workers(name):
  run = axis.run(_first_step(CASES[name], _tx(name, f=N // 2)), N, axis_name=AXIS)
  with pytest.raises(ValueError, match=f'f={N // 2}'):
    jax.eval_shape(run, _params(), *_data())


# ---------------------------------------------------------------------------------------------- bad input
# The contract of optim/checks.py, for the worker-axis methods: built with a negative or non-finite learning rate
# or a NaN hyperparameter, a transform raises a ValueError naming itself and the argument; every aggregation rule
# says in its docstring what a NaN or inf row does (tests/decentral/robust/test_robust.py checks that it does it);
# Krum's paper convention enforces the paper's n > 2f + 2. Builds only: nothing is compiled.

NOT_HYPERPARAMETERS = ('seed',)  # any integer seeds a PRNG key

# Transforms that do not meet the contract yet (none today); strict xfails, so a fix makes the suite fail until the
# name is removed here, and a new transform that skips the checks fails at once.
UNCHECKED_LEARNING_RATE: set[str] = set()
UNCHECKED_HYPERPARAMETERS: set[str] = set()


def _known(names, unchecked, what):
  return [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=f'{n} does not check its {what} yet'))
          if n in unchecked else n for n in names]


def _hyperparameters(entry):
  """The entry's real-valued keyword arguments (signature defaults updated by the registered ones)."""
  out = {}
  for name, p in inspect.signature(entry.factory).parameters.items():
    value = entry.defaults.get(name, p.default)
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and name not in NOT_HYPERPARAMETERS:
      out[name] = value
  return out


def _raises_named(entry, argument, value):
  with pytest.raises(ValueError) as error:
    entry.build(axis_name=AXIS, **{argument: value})
  message = str(error.value)
  assert entry.name in message and argument in message, f'{entry.name}: the error does not name both: {message}'


@pytest.mark.parametrize('name', _known(sorted(n for n, e in zip(registry.transforms.names(),
                                                                 registry.transforms.entries())
                                               if 'learning_rate' in _hyperparameters(e)),
                                        UNCHECKED_LEARNING_RATE, 'learning rate'))
def test_bad_learning_rate_is_rejected(name):
  entry = registry.transforms.get(name)
  for bad in (-0.1, float('nan'), float('inf')):  # not all worker-axis methods take schedules
    _raises_named(entry, 'learning_rate', bad)


@pytest.mark.parametrize('name', _known(registry.transforms.names(), UNCHECKED_HYPERPARAMETERS, 'hyperparameters'))
def test_nan_hyperparameters_are_rejected(name):
  entry = registry.transforms.get(name)
  for argument in _hyperparameters(entry):
    _raises_named(entry, argument, float('nan'))


@pytest.mark.parametrize('name', registry.rules.names())
def test_rule_says_what_a_nonfinite_row_does(name):
  doc = inspect.getdoc(registry.rules.get(name).factory) or ''
  assert re.search(r'\bNaN\b|non-finite', doc, re.IGNORECASE), f'{name}: the docstring does not say what a NaN row does'


@pytest.mark.parametrize('name', ['krum', 'multi_krum'])
def test_krum_paper_convention_needs_n_above_2f_plus_2(name):
  rule = registry.rules.build(name, convention='paper')
  with pytest.raises(ValueError, match=r'n > 2f \+ 2'):
    rule(np.ones((N, 2), np.float32), f=(N - 2) // 2)  # n = 2f + 2: f < n/2, but not the paper's assumption


# ---------------------------------------------------------------------------------------------- A-EDiT


def test_a_edit_runner_same_on_every_backend():
  """A-EDiT drives jitted per-event steps from the host (not a transform): its syncs agree on every backend."""
  targets, curvature, _ = _data()

  def grad_fn(params, worker):
    loss_fn = functools.partial(_loss, targets=jax.tree.map(lambda c: c[worker], targets),
                                curvature=curvature[worker])
    return jax.value_and_grad(loss_fn)(params)

  def go(backend):
    return run_a_edit(jax.tree.map(lambda x: x[0], _params()), num_workers=N, inner=optax.sgd(0.05),
                      grad_fn=grad_fn, batch_fn=lambda w, k: w, step_time=lambda w, k: 1.0 + 0.25 * (w % 3),
                      sync_time=3.0, total_time=9.0, warmup=2, backend=backend)

  want, history = go('vmap')
  assert len(history) == 3
  for backend in ('shard_map', 'pmap'):
    got, got_history = go(backend)
    chex.assert_trees_all_close(got, want, rtol=1e-5, atol=1e-6)
    assert [h['steps'] for h in got_history] == [h['steps'] for h in history]


# ---------------------------------------------------------------------------------------------- federated


FED_CLIENTS, FED_SLOTS = 12, N  # 8 of 12 clients a round, one worker per slot


@functools.cache
def _federated_problem():
  """12 clients of unequal sizes (client 3 has none) with a softmax regression on 4 features, 3 classes."""
  from decentral.federated import partitions
  rng = np.random.default_rng(0)
  sizes = [5, 3, 7, 0, 4, 6, 2, 5, 3, 4, 6, 1]
  x = rng.normal(size=(sum(sizes), 4)).astype(np.float32)
  y = rng.integers(0, 3, size=sum(sizes)).astype(np.int32)
  bounds = np.cumsum([0] + sizes)
  data = partitions.pad({'x': x, 'y': y}, [np.arange(bounds[i], bounds[i + 1]) for i in range(len(sizes))])
  params = {'w': jnp.asarray(rng.normal(size=(4, 3)), jnp.float32), 'b': jnp.zeros(3)}

  def loss(p, batch):
    logits = batch['x'] @ p['w'] + p['b']
    return -jnp.take_along_axis(jax.nn.log_softmax(logits), batch['y'][:, None], axis=1)[:, 0]

  return data, params, loss


@functools.cache
def _federated_run(name, backend):
  from decentral.federated import rounds, sampling
  data, params, loss = _federated_problem()
  fed = rounds.Federated(loss, data, local=rounds.Local(optax.sgd(0.1, momentum=0.9), steps=2, batch_size=3),
                         sampler=sampling.uniform(FED_CLIENTS, FED_SLOTS), algorithm=registry.federated.build(name),
                         backend=backend)
  state = fed.init(params, jax.random.key(3))
  states = [state]
  for _ in range(2):
    state, metrics = fed.round(state)
    states.append(state)
  return fed, states, metrics


@pytest.mark.parametrize('name', registry.federated.names())
def test_federated_round_same_on_every_backend(name):
  _, want, metrics = _federated_run(name, 'vmap')
  for backend in ('shard_map', 'pmap'):
    _, got, got_metrics = _federated_run(name, backend)
    chex.assert_trees_all_close(_comparable(got[-1]), _comparable(want[-1]), rtol=1e-5, atol=1e-6,
                                custom_message=f'{name}: state under {backend} differs from vmap')
    np.testing.assert_array_equal(got_metrics.sent, metrics.sent)
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(want[-1].params)), name
  assert not jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.all(a == b)), want[-1].params, want[0].params)), name


@pytest.mark.parametrize('name', registry.federated.names())
def test_federated_resume_is_bit_identical(name, tmp_path):
  fed, states, _ = _federated_run(name, 'vmap')
  ckpt = ocp.StandardCheckpointer()
  ckpt.save(tmp_path / 'server', states[1])
  ckpt.wait_until_finished()
  restored = _uncommitted(ckpt.restore(tmp_path / 'server', jax.eval_shape(lambda: states[1])))
  resumed, _ = fed.round(restored)
  chex.assert_trees_all_equal(_comparable(resumed), _comparable(states[2]))
