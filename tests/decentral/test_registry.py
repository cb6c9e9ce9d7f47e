"""The registries of decentral: what ``build`` returns for rules, attacks and compressors, and clear errors."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import decentral
from decentral import registry


def test_rules_build_the_function_or_the_stateful_rule():
  assert registry.rules.build('median') is decentral.median  # nothing to bind: the function itself
  krum = registry.rules.build('krum')
  assert isinstance(krum, functools.partial) and krum.func is decentral.krum
  assert krum.keywords == {'convention': 'byzfl'}
  assert registry.rules.build('krum', convention='paper').keywords == {'convention': 'paper'}
  for name in registry.rules.names(having=('stateful',)):
    assert isinstance(registry.rules.build(name), decentral.StatefulRule), name
  assert set(registry.rules.names(having=('stateful',))) == {'centered_clipping', 'sybilwall'}
  x = jnp.asarray(np.random.RandomState(0).randn(7, 3), jnp.float32)
  for name in registry.rules.names(without=('stateful',)):
    out = registry.rules.build(name)(x, f=1, key=jax.random.key(0))
    assert out.shape == (3,) and bool(jnp.all(jnp.isfinite(out))), name


def test_attacks_and_compressors_build():
  assert registry.attacks.build('sign_flipping') is decentral.sign_flipping
  alie = decentral.get_attack('a_little_is_enough', tau=2.0)
  assert alie.func is decentral.a_little_is_enough and alie.keywords == {'tau': 2.0}
  c = registry.compressors.build('top_k', ratio=0.5)
  assert isinstance(c, decentral.Compressor) and c.nbytes((4,), jnp.float32) == 2 * (4 + 1)
  for name in ('fedzip', 'sparseloco', 'identity'):
    assert isinstance(registry.compressors.build(name), decentral.Compressor)


def test_unknown_names_and_arguments_fail_clearly():
  with pytest.raises(KeyError, match='unknown aggregation rule name .*known: arc\\+multi_krum'):
    decentral.get_rule('no-such-rule')
  with pytest.raises(KeyError, match='unknown attack'):
    registry.attacks.build('no-such-attack')
  with pytest.raises(KeyError, match='unknown compressor'):
    registry.compressors.build('gzip')
  with pytest.raises(TypeError, match="'krum' got unknown arguments \\['tau'\\]; it takes \\['convention'\\]"):
    registry.rules.build('krum', tau=1.0)
  with pytest.raises(TypeError, match='unknown arguments'):
    registry.attacks.build('sign_flipping', tau=1.0)
