"""Curricula in FL (decentral/federated/curricula.py): the pacing functions against a transcription of Wu et al.'s
``get_pacing_function``, the orderings as the stated permutations, paced passes drawing only the working set, the
client-level curriculum's sampling law, and a first round on the engine against a hand computation."""

from __future__ import annotations

import math
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from decentral.federated import curricula


def wu_pacing(kind, total_step, total_data, a, b):
  """google-research/understanding-curricula utils.get_pacing_function, transcribed (int() truncation)."""
  start = b * total_data
  if kind == 'linear':
    return lambda t: int((total_data - start) / (a * total_step) * t + start)
  if kind == 'quad':
    return lambda t: int((total_data - start) / (a * total_step) ** 2 * t ** 2 + start)
  if kind == 'root':
    return lambda t: int((total_data - start) / (a * total_step) ** 0.5 * t ** 0.5 + start)
  if kind == 'step':
    return lambda t: int(total_data * (t // (a * total_step)) + start)
  if kind == 'exp':
    return lambda t: (int((total_data - start) / (np.exp(10) - 1) * (np.exp(t * 10 / (a * total_step)) - 1) + start)
                      if t <= a * total_step else total_data)
  return lambda t: int((total_data - start) * (1 + 0.1 * np.log(t / (a * total_step) + np.exp(-10))) + start)


@pytest.mark.parametrize('kind', curricula.PACINGS)
def test_pacing_matches_wu_et_al(kind):
  total_steps, n, a, b = 50, 137, 0.6, 0.15
  ref = wu_pacing(kind, total_steps, n, a, b)
  steps = np.arange(total_steps)
  ours = np.asarray(curricula.pacing(kind, steps, total_steps, n, a=a, b=b))
  expected = np.clip([ref(int(t)) for t in steps], 1, n)
  assert np.abs(ours - expected).max() <= 1  # float32 against float64 at an integer boundary
  assert (ours == expected).mean() > 0.9
  assert ours[0] == math.floor(b * n) and np.all(np.diff(ours) >= 0)


def test_pacing_per_client_and_floor():
  g = curricula.pacing('linear', 0, 10, jnp.array([0, 3, 100]), a=0.5, b=0.0, minimum=2)
  assert g.tolist() == [0, 2, 2]  # an empty client stays empty; the floor is min(minimum, n)


def test_orderings_are_the_stated_permutations():
  scores = jnp.array([0.5, 0.1, 0.9, 0.1, 0.3, -7.0])  # the last row is padding (count 5)
  assert curricula.order(scores, 'curriculum', count=5).tolist() == [1, 3, 4, 0, 2, 5]  # stable on the tie
  assert curricula.order(scores, 'anti', count=5).tolist() == [2, 0, 4, 1, 3, 5]
  assert curricula.order(scores, 'none', count=5).tolist() == list(range(6))
  r1 = curricula.order(scores, 'random', count=5, key=jax.random.key(0))
  r2 = curricula.order(scores, 'random', count=5, key=jax.random.key(0))
  assert sorted(r1[:5].tolist()) == [0, 1, 2, 3, 4] and int(r1[5]) == 5 and r1.tolist() == r2.tolist()
  with pytest.raises(ValueError, match='needs a key'):
    curricula.order(scores, 'random')
  many = curricula.orders(jnp.stack([scores, -scores]), jnp.array([5, 6]), 'curriculum')
  assert many.tolist() == [[1, 3, 4, 0, 2, 5], [2, 0, 4, 1, 3, 5]]


def test_paced_pass_draws_only_the_working_set():
  perm = jnp.array([4, 2, 0, 1, 3, 5, 6])  # 5 real rows, then padding
  out = curricula.paced_pass(perm, 5, 2, jax.random.key(1))
  assert sorted(out[:5].tolist()) == [2, 2, 4, 4, 4] or sorted(out[:5].tolist()) == [2, 2, 2, 4, 4]
  assert out[5:].tolist() == [5, 6]
  rows, mask = curricula.paced_batch(jax.random.key(2), perm, 3, 4)
  assert set(rows[mask].tolist()) == {4, 2, 0} and int(mask.sum()) == 3


def test_client_curriculum_samples_among_the_easiest():
  scores = jnp.array([[0.1, 0.2], [5.0, 0.0], [0.3, 9.0], [1.0, 1.0]])
  counts = jnp.array([2, 1, 1, 0])
  difficulty = curricula.client_scores(scores, counts)
  np.testing.assert_allclose(difficulty, [0.15, 5.0, 0.3, np.inf])
  p = curricula.client_probabilities(difficulty, 'curriculum', 0, 10, a=0.5, b=0.5, minimum=1)
  np.testing.assert_allclose(p, [0.5, 0.0, 0.5, 0.0])  # g_c(0) = 2 easiest: clients 0 and 2
  p = curricula.client_probabilities(difficulty, 'anti', 0, 10, a=0.5, b=0.25, minimum=1)
  np.testing.assert_allclose(p, [0.0, 0.0, 0.0, 1.0])  # anti: the empty client (inf) is the hardest
  algo = curricula.curriculum_algorithm('curriculum', total_rounds=10, scores=scores, counts=counts,
                                        client_kind='curriculum', client_a=0.5, client_b=0.5)
  from decentral.federated import sampling
  sel = algo.select(types.SimpleNamespace(round=jnp.int32(0)), sampling.uniform(4, 2), jax.random.key(0))
  assert sorted(sel.clients.tolist()) == [0, 2] and np.allclose(sel.inclusion, 1.0)


def test_engine_first_round_uses_the_easiest_rows(x64):
  """Two clients of 4 rows, b = 0.5: round 0 trains on the 2 lowest-score rows of each (one full-batch step)."""
  from decentral.federated import partitions, rounds, sampling
  x = np.array([3.0, -1.0, 2.0, 0.5, 4.0, 1.0, -2.0, 0.0])
  scores = np.array([[0.3, 0.1, 0.9, 0.2], [0.5, 0.4, 0.1, 0.8]])
  data = partitions.pad({'x': x}, [np.arange(4), np.arange(4, 8)])
  loss = lambda w, batch: 0.5 * (w - batch['x']) ** 2  # noqa: E731
  algo = curricula.curriculum_algorithm('curriculum', total_rounds=10, scores=jnp.asarray(scores), a=0.5, b=0.5)
  fed = rounds.Federated(loss, data, local=rounds.Local(optax.sgd(0.5), steps=1), sampler=sampling.everyone(2),
                         algorithm=algo)
  state, _ = fed.round(fed.init(jnp.asarray(0.0), jax.random.key(0)))
  easy = [np.mean(x[[1, 3]]), np.mean(x[[6, 5]])]  # client 0: rows 1 (0.1), 3 (0.2); client 1: rows 6, 5
  np.testing.assert_allclose(state.params, np.mean([0.5 * e for e in easy]), rtol=1e-7)
