"""The transform contract made executable for optim: every registered optimizer and transform runs through it.

An optimizer joins by a line in ``optim/registry.py`` (``register(...)``, or ``transforms.register(...)`` for a
composable transform that is not an optimizer on its own); nothing here names them, so a new entry is checked the
moment it is registered. The worker-axis contract is ``tests/decentral/test_conformance_decentral.py``.
"""

import functools
import inspect
import numbers

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from optim import registry


def _after_sgd(entry):
  """A registered composable transform as an optimizer: an SGD step, then the transform."""
  shares_lr = 'learning_rate' in registry.accepted(entry.factory)

  def factory(learning_rate, **kwargs):
    inner = entry.factory(**kwargs, **({'learning_rate': learning_rate} if shares_lr else {}))
    return optax.chain(optax.sgd(learning_rate), inner)

  # The transform's own keywords, visible to optax.inject_hyperparams (which reads the signature).
  params = [p for p in inspect.signature(entry.factory).parameters.values() if p.name != 'learning_rate']
  lr = inspect.Parameter('learning_rate', inspect.Parameter.KEYWORD_ONLY)
  factory.__signature__ = inspect.Signature([lr] + [p.replace(kind=p.KEYWORD_ONLY) for p in params])
  return registry.Entry(f'transform:{entry.name}', factory, {'learning_rate': 0.05, **entry.defaults}, 'transform',
                        entry.extra_args, entry.tags)


ENTRIES = {e.name: e for e in registry.entries()}
ENTRIES.update({t.name: t for t in map(_after_sgd, registry.transforms.entries())})


def _params(dtype=jnp.float32):
  """A nested tree with matrices, a conv kernel, vectors and a scalar, as real models have."""
  k = jax.random.split(jax.random.key(0), 4)
  tree = {
      'dense': {'w': jax.random.normal(k[0], (6, 4)), 'b': jnp.zeros((4,))},
      'conv': (jax.random.normal(k[1], (3, 3, 2, 4)) * 0.3, jax.random.normal(k[2], (4,))),
      'scale': jnp.asarray(1.5),
      'head': [jax.random.normal(k[3], (4, 3))],
  }
  return jax.tree.map(lambda x: x.astype(dtype), tree)


def _loss(params):
  """A smooth non-quadratic loss touching every leaf."""
  leaves = jax.tree.leaves(params)
  return sum(jnp.sum(jnp.log(jnp.cosh(x.astype(jnp.float32) - 0.3)) + 0.05 * x.astype(jnp.float32) ** 2)
             for x in leaves)


def _logits(params):
  """A softmax model's logits (batch 2, 3 classes) touching every leaf: Sophia-G's estimator samples from it."""
  feats = jnp.stack([jnp.sum(jnp.tanh(x.astype(jnp.float32))) for x in jax.tree.leaves(params)])
  weights = jnp.linspace(-1.0, 1.0, 6 * feats.size).reshape(2, 3, feats.size)
  return weights @ feats


def _step_fn(entry, tx):
  def step(params, state, key):
    grads = jax.grad(_loss)(params)
    grads = jax.tree.map(lambda g, p: g.astype(p.dtype), grads, params)
    extra = entry.oracles(loss_fn=_loss, logits_fn=_logits, params=params, key=key)
    updates, state = tx.update(grads, state, params, **extra)
    return optax.apply_updates(params, updates), state, updates
  return step


_JITTED = {}


def _jitted_step(entry, tx):
  # Tests of one entry share its compiled step (compilation dominates the suite's time).
  if id(tx) not in _JITTED:
    _JITTED[id(tx)] = (tx, jax.jit(_step_fn(entry, tx)))
  return _JITTED[id(tx)][1]


@functools.cache
def _built(name):
  return ENTRIES[name].build()


def _run(entry, tx, params, state, steps, start=0):
  step = _jitted_step(entry, tx)
  for t in range(start, start + steps):
    params, state, _ = step(params, state, jax.random.fold_in(jax.random.key(1), t))
  return params, state


@pytest.fixture(params=sorted(ENTRIES))
def entry(request):
  return ENTRIES[request.param]


def test_registry_has_optax_baselines():
  assert {'sgd', 'adam'} <= set(ENTRIES)
  with pytest.raises(KeyError, match='unknown optimizer name'):
    registry.get('no-such-optimizer')


def test_jit_does_not_recompile(entry):
  tx = entry.build()
  traces = []

  def step(params, state, key):
    traces.append(1)
    return _step_fn(entry, tx)(params, state, key)

  step = jax.jit(step)
  params = _params()
  state = tx.init(params)
  for t in range(3):
    params, state, _ = step(params, state, jax.random.key(t))
  assert len(traces) == 1, f'{entry.name} retraced its step {len(traces)} times'


def test_nested_pytree_keeps_structure_and_decreases_loss(entry):
  tx = _built(entry.name)
  params = _params()
  state = tx.init(params)
  new, state = _run(entry, tx, params, state, 20)
  assert jax.tree.structure(new) == jax.tree.structure(params)
  for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(params)):
    assert a.shape == b.shape and a.dtype == b.dtype
    assert np.all(np.isfinite(a))
  assert _loss(new) < _loss(params), f'{entry.name} did not decrease a smooth loss in 20 steps'


def test_bf16_parameters_stay_bf16(entry):
  tx = entry.build()
  params = _params(jnp.bfloat16)
  state = tx.init(params)
  params2, state2, updates = jax.jit(_step_fn(entry, tx))(params, state, jax.random.key(0))
  for u, p in zip(jax.tree.leaves(updates), jax.tree.leaves(params2)):
    assert u.dtype == jnp.bfloat16, f'{entry.name} returned an update of dtype {u.dtype} for bf16 parameters'
    assert p.dtype == jnp.bfloat16


def test_orbax_round_trip_continues_bit_identically(entry, tmp_path):
  tx = _built(entry.name)
  params = _params()
  params, state = _run(entry, tx, params, tx.init(params), 3)
  ckpt = ocp.StandardCheckpointer()
  ckpt.save(tmp_path / 'state', {'params': params, 'state': state})
  ckpt.wait_until_finished()
  target = jax.eval_shape(lambda: {'params': params, 'state': state})
  restored = ckpt.restore(tmp_path / 'state', target)
  chex.assert_trees_all_equal(restored['state'], state)
  a = _run(entry, tx, params, state, 3, start=3)
  b = _run(entry, tx, restored['params'], restored['state'], 3, start=3)
  chex.assert_trees_all_equal(a, b)


def _numeric_defaults(entry):
  accepted = set(inspect.signature(entry.factory).parameters)
  return {k: v for k, v in entry.defaults.items()
          if k in accepted and isinstance(v, numbers.Real) and not isinstance(v, bool)}


def test_inject_hyperparams_matches_plain(entry):
  numeric = _numeric_defaults(entry)
  if 'learning_rate' not in numeric:
    pytest.fail(f'{entry.name}: learning_rate must be a numeric default')
  others = {k: v for k, v in entry.defaults.items() if k not in numeric}
  injected = optax.inject_hyperparams(entry.factory, static_args=tuple(others))(**numeric, **others)
  plain = _built(entry.name)
  params = _params()
  a, _ = _run(entry, plain, params, plain.init(params), 3)
  b, state = _run(entry, injected, params, injected.init(params), 3)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6), a, b)
  # The injected learning rate is live: changing it changes the next step.
  state.hyperparams['learning_rate'] = jnp.asarray(0.0)
  c, _ = _run(entry, injected, b, state, 1, start=3)
  jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, atol=1e-7), b, c)


# ---------------------------------------------------------------------------------------------- bad input
# One contract (optim/checks.py): built with a negative or non-finite learning rate, or a NaN hyperparameter, an
# entry raises a ValueError naming itself and the argument; an update tree that does not match the state raises a
# ValueError naming it; optax.apply_if_finite skips a step whose gradient is not finite, leaving the parameters and
# the optimizer's state as they were. Builds and single eager updates only: no compilation.

# The registered transforms are checked on their own (not after the SGD step ``_after_sgd`` puts before them).
OWN = {e.name: e for e in registry.entries()}
OWN.update({f'transform:{t.name}': t for t in registry.transforms.entries()})
NOT_HYPERPARAMETERS = ('seed',)  # any integer seeds a PRNG key


def _names(entry):
  """What an error may call the entry: its registered name or its factory's."""
  return {entry.name.split(':')[-1], inspect.unwrap(entry.factory).__name__}


def _assert_named(error, entry, argument=None):
  message = str(error.value)
  assert any(n in message for n in _names(entry)), f'{entry.name}: the error does not name it: {message}'
  assert argument is None or argument in message, f'{entry.name}: the error does not name {argument}: {message}'


def _hyperparameters(entry):
  """The entry's real-valued keyword arguments (signature defaults updated by the registered ones)."""
  out = {}
  for name, p in inspect.signature(entry.factory).parameters.items():
    value = entry.defaults.get(name, p.default)
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and name not in NOT_HYPERPARAMETERS:
      out[name] = value
  return out


def _with_learning_rate():
  return sorted(n for n, e in OWN.items() if 'learning_rate' in registry.accepted(e.factory))


def _check_learning_rates(entry):
  for bad in (-0.1, float('nan'), float('inf'), lambda count: -0.1 + 0.0 * count):
    with pytest.raises(ValueError) as error:
      entry.build(learning_rate=bad)
    _assert_named(error, entry, 'learning_rate')
  entry.build(learning_rate=optax.linear_schedule(0.1, 0.0, 10))  # a schedule is accepted


@pytest.mark.parametrize('name', _with_learning_rate())
def test_bad_learning_rate_is_rejected(name):
  _check_learning_rates(OWN[name])


@pytest.mark.parametrize('name', sorted(OWN))
def test_nan_hyperparameters_are_rejected(name):
  entry = OWN[name]
  for argument in _hyperparameters(entry):
    with pytest.raises(ValueError) as error:
      entry.build(**{argument: float('nan')})
    _assert_named(error, entry, argument)


def test_a_transform_accepting_a_negative_learning_rate_fails_the_contract():
  def lax_sgd(learning_rate):  # optax.sgd itself, not behind checks.validated
    return optax.sgd(learning_rate)

  with pytest.raises(pytest.fail.Exception, match='DID NOT RAISE'):
    _check_learning_rates(registry.Entry('lax_sgd', lax_sgd, {'learning_rate': 0.1}))
  _check_learning_rates(registry.Entry('sgd', registry.get('sgd').factory, {'learning_rate': 0.1}))


def test_mismatched_tree_is_rejected(entry):
  tx = _built(entry.name)
  params = _params()
  state = tx.init(params)
  bad = {'dense': params['dense'], 'other': jnp.ones(3)}
  extra = entry.oracles(loss_fn=_loss, logits_fn=_logits, params=params, key=jax.random.key(0))
  if 'stateless' in entry.tags:
    # Nothing to mismatch against: the update must then be a pure function of the given tree alone.
    out, _ = tx.update(bad, state)
    assert jax.tree.structure(out) == jax.tree.structure(bad)
    return
  with pytest.raises(ValueError) as error:
    tx.update(bad, state, params, **extra)
  _assert_named(error, OWN[entry.name])


def test_nonfinite_gradient_is_skipped_by_apply_if_finite(entry):
  tx = optax.apply_if_finite(_built(entry.name), max_consecutive_errors=2)
  params = _params()
  state = tx.init(params)
  grads = jax.tree.map(jnp.ones_like, params)
  grads['dense']['b'] = grads['dense']['b'].at[1].set(jnp.nan)
  extra = entry.oracles(loss_fn=_loss, logits_fn=_logits, params=params, key=jax.random.key(0))
  with jax.disable_jit():  # lax.cond then runs the branch taken only: one eager update, nothing compiled
    updates, new_state = tx.update(grads, state, params, **extra)
  chex.assert_trees_all_equal(optax.apply_updates(params, updates), params)
  chex.assert_trees_all_equal(new_state.inner_state, state.inner_state)
  assert int(new_state.notfinite_count) == 1
