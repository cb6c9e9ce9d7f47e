"""Client sampling per round: which clients fill the m slots of the worker axis, and with what probability.

A :class:`Sampler` has a static number of ``slots`` m (the size of the worker axis the round runs on) and a pure
``sample(key) -> Selection``; the key is explicit (the round engine passes ``fold_in(run_key, round)``), so a run is
reproducible from its seed and round. Laws:

- :func:`uniform`: m distinct clients, uniformly without replacement (FedAvg, McMahan et al. 2017, arXiv
  1602.05629); each client is in the round with probability m / N;
- :func:`with_probabilities`: m i.i.d. draws with replacement from given probabilities p (Li et al. 2020, "On the
  convergence of FedAvg on non-IID data", arXiv 1907.02189, scheme I); a client drawn twice fills two slots;
- :func:`bernoulli`: client i participates independently with probability p_i (FedStale's model, arXiv
  2405.04171); all N clients hold a slot and ``active`` says who trains, so the number of participants varies
  from round to round without recompiling;
- :func:`everyone`: full participation.

``Selection.inclusion`` is pi_i = P(client i is in the round), for unbiased aggregation weights p_i / pi_i.

>>> import jax
>>> s = uniform(10, 3).sample(jax.random.key(0))
>>> s.clients.shape, bool(s.active.all()), float(s.inclusion[0])
((3,), True, 0.3)
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from decentral import checks


class Selection(NamedTuple):
  """One round's draw: ``clients`` int32 [m] (client id per slot), ``active`` bool [m] (the slot trains and is
  aggregated), ``inclusion`` float [m] (pi of the slot's client)."""

  clients: jax.Array
  active: jax.Array
  inclusion: jax.Array


class Sampler(NamedTuple):
  """``slots`` m (static: the worker-axis size), ``num_clients`` N, and ``sample(key) -> Selection``."""

  num_clients: int
  slots: int
  sample: Callable[[jax.Array], Selection]
  name: str = ''


def uniform(num_clients: int, per_round: int) -> Sampler:
  """``per_round`` distinct clients out of ``num_clients``, every subset equally likely."""
  checks.positive_int(num_clients, 'num_clients')
  checks.positive_int(per_round, 'per_round')
  if per_round > num_clients:
    raise ValueError(f'uniform: per_round={per_round} exceeds num_clients={num_clients}')

  def sample(key):
    clients = jax.random.choice(key, num_clients, (per_round,), replace=False).astype(jnp.int32)
    return Selection(clients, jnp.ones(per_round, bool), jnp.full(per_round, per_round / num_clients))

  return Sampler(num_clients, per_round, sample, 'uniform')


def with_probabilities(probs, per_round: int) -> Sampler:
  """``per_round`` i.i.d. draws with replacement, client i with probability p_i (``probs`` normalised to sum 1)."""
  p = _probabilities(probs, 'with_probabilities')
  checks.positive_int(per_round, 'per_round')
  inclusion = jnp.asarray(1.0 - (1.0 - p) ** per_round)
  pj = jnp.asarray(p)

  def sample(key):
    clients = jax.random.choice(key, p.size, (per_round,), replace=True, p=pj).astype(jnp.int32)
    return Selection(clients, jnp.ones(per_round, bool), inclusion[clients])

  return Sampler(int(p.size), per_round, sample, 'with_probabilities')


def bernoulli(probs) -> Sampler:
  """Client i participates with probability p_i, independently (``probs`` in [0, 1], not normalised)."""
  p = np.asarray(probs, np.float64)
  if p.ndim != 1 or p.size == 0 or np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
    raise ValueError(f'bernoulli: probs must be a non-empty vector in [0, 1], got {probs!r}')
  pj = jnp.asarray(p)
  clients = jnp.arange(p.size, dtype=jnp.int32)

  def sample(key):
    return Selection(clients, jax.random.uniform(key, (p.size,)) < pj, pj)

  return Sampler(int(p.size), int(p.size), sample, 'bernoulli')


def everyone(num_clients: int) -> Sampler:
  """Every client every round (full participation)."""
  checks.positive_int(num_clients, 'num_clients')
  clients = jnp.arange(num_clients, dtype=jnp.int32)
  return Sampler(num_clients, num_clients,
                 lambda key: Selection(clients, jnp.ones(num_clients, bool), jnp.ones(num_clients)),
                 'everyone')


def _probabilities(probs, where):
  p = np.asarray(probs, np.float64)
  if p.ndim != 1 or p.size == 0 or np.any(~np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
    raise ValueError(f'{where}: probs must be a non-empty vector of non-negative numbers with a positive sum, '
                     f'got {probs!r}')
  return p / p.sum()
