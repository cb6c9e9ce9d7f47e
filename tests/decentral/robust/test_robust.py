"""Aggregation rules and pre-aggregations: ByzFL/Flower fixtures, independent NumPy oracles, properties, bounds.

Oracles are written here from the definitions in the papers and the reference code (ByzFL, Flower, the Flag
Aggregator, Multi-metrics and FoolsGold code), as plain loops in float64.
"""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import decentral
from decentral import registry, stacked
from decentral.robust import similarity

@functools.cache
def _jitted(rule, f, **kwargs):
  return jax.jit(functools.partial(rule, f=f, **kwargs))


X3 = np.array([[1., 2., 3.], [4., 5., 6.], [7., 8., 9.]])


# ------------------------------------------------------------------------------------------------ fixtures


def test_byzfl_fixtures(x64):
  """The values in ByzFL's docstrings and unit tests on [[1,2,3],[4,5,6],[7,8,9]] (notes §1.1)."""
  x = jnp.asarray(X3)
  np.testing.assert_allclose(_jitted(decentral.median, 0)(x), [4, 5, 6])
  np.testing.assert_allclose(_jitted(decentral.trimmed_mean, 1)(x), [4, 5, 6])
  np.testing.assert_allclose(_jitted(decentral.krum, 1)(x), [1, 2, 3])  # all scores tie: lowest index
  np.testing.assert_allclose(_jitted(decentral.multi_krum, 1)(x), [2.5, 3.5, 4.5])
  np.testing.assert_allclose(_jitted(decentral.geometric_median, 0)(x), [3.78788764, 4.78788764, 5.78788764],
                             rtol=1e-8)
  np.testing.assert_allclose(_jitted(decentral.nearest_neighbour_average, 1, pivot=0)(x), [2.5, 3.5, 4.5])
  np.testing.assert_allclose(_jitted(decentral.nnm, 1)(x), [[2.5, 3.5, 4.5], [2.5, 3.5, 4.5], [5.5, 6.5, 7.5]])
  cc = decentral.centered_clipping()
  np.testing.assert_allclose(jax.jit(lambda x: cc.apply(x, cc.init(x[0]), f=1)[0])(x), [4, 5, 6])


def test_geometric_median_first_step_by_hand(x64):
  """One smoothed Weiszfeld step from zero: weights 1/max(|x_i|, nu)."""
  x = np.array([[3., 4.], [0., 0.05], [-6., 8.]])
  w = 1 / np.maximum(np.linalg.norm(x, axis=1), 0.1)
  want = (w[:, None] * x).sum(0) / w.sum()
  np.testing.assert_allclose(_jitted(decentral.geometric_median, 0, iters=1)(jnp.asarray(x)), want, rtol=1e-12)


def _krum_oracle(x, f, convention):
  """Krum scores exactly as ByzFL (mean of n-f-1 nearest squared distances), the paper (sum of the n-f-2
  closest) or Flower (sum of max(1, n-f-2))."""
  n = len(x)
  d2 = np.array([[np.sum((a - b) ** 2) for b in x] for a in x])
  k = {'byzfl': n - f - 1, 'paper': n - f - 2, 'flower': max(1, n - f - 2)}[convention]
  scores = []
  for i in range(n):
    others = sorted(d2[i, j] for j in range(n) if j != i)[:k]
    scores.append(np.mean(others) if convention == 'byzfl' else np.sum(others))
  return np.array(scores)


@pytest.mark.parametrize('convention', ['byzfl', 'paper', 'flower'])
def test_krum_and_multi_krum_match_their_definitions(x64, convention):
  rng = np.random.RandomState(0)
  for f in (1, 2, 3):
    x = rng.randn(9, 4) * rng.uniform(0.5, 3, size=(9, 1))
    scores = _krum_oracle(x, f, convention)
    order = np.argsort(scores, kind='stable')
    both = jax.jit(lambda x: (decentral.krum(x, f=f, convention=convention),
                              decentral.multi_krum(x, f=f, convention=convention),
                              decentral.multi_krum(x, f=f, m=3, convention=convention)))
    chosen, multi, three = both(jnp.asarray(x))
    np.testing.assert_allclose(chosen, x[order[0]])
    np.testing.assert_allclose(multi, x[order[:9 - f]].mean(0), rtol=1e-10)
    np.testing.assert_allclose(three, x[order[:3]].mean(0), rtol=1e-10)


def test_krum_conventions_differ_on_a_hand_example(x64):
  """n=5, f=1 on a line: ByzFL sums the 3 nearest squared distances, Flower the 2 nearest.

  Points 0, 1, 2, 5, 5.5. ByzFL scores: 0 -> 1+4+25=30, 1 -> 1+1+16=18, 2 -> 1+4+9=14, 5 -> .25+9+16, 5.5 ->
  .25+12.25+20.25; Krum picks 2. Flower (2 nearest): 5 -> .25+9=9.25, 5.5 -> .25+12.25=12.5, 2 -> 1+4=5, 1 -> 1+1=2;
  Krum picks 1.
  """
  x = jnp.asarray([[0.], [1.], [2.], [5.], [5.5]])
  assert float(_jitted(decentral.krum, 1)(x)[0]) == 2.0
  flower = _jitted(decentral.krum, 1, convention='flower')
  assert float(flower(x)[0]) == 1.0
  # Flower's own test: f=1 on 0.2 / 0.7 / 1.0 returns 0.7.
  assert float(flower(jnp.asarray([[0.2], [0.7], [1.0]]))[0]) == pytest.approx(0.7)


def test_krum_paper_convention_by_hand(x64):
  """The paper scores each vector by the squared distances to its n - f - 2 closest (Blanchard et al. 2017).

  n=5, f=1 on a line, points 0, 1, 2, 6, 7; squared distances 0-1: 1, 0-2: 4, 0-6: 36, 0-7: 49, 1-2: 1, 1-6: 25,
  1-7: 36, 2-6: 16, 2-7: 25, 6-7: 1. The paper (2 closest): 0 -> 1+4=5, 1 -> 1+1=2, 2 -> 1+4=5, 6 -> 1+16=17,
  7 -> 1+25=26; Krum picks 1. ByzFL (3 closest): 0 -> 41, 1 -> 27, 2 -> 21, 6 -> 42, 7 -> 62; Krum picks 2.
  Multi-Krum with m=2 on the paper's scores averages 1 and 0 (score 5, the lower index of the tie with 2).
  """
  x = jnp.asarray([[0.], [1.], [2.], [6.], [7.]])
  assert float(_jitted(decentral.krum, 1, convention='paper')(x)[0]) == 1.0
  assert float(_jitted(decentral.krum, 1)(x)[0]) == 2.0
  assert float(_jitted(decentral.multi_krum, 1, m=2, convention='paper')(x)[0]) == 0.5
  # Where the paper's count is at least one it is Flower's; below, the paper's rule is undefined.
  assert float(_jitted(decentral.krum, 1, convention='flower')(x)[0]) == 1.0
  with pytest.raises(ValueError, match='n - f - 2'):
    decentral.krum(jnp.ones((3, 2)), f=1, convention='paper')


def _arc_oracle(x, f):
  """ByzFL's ARC loop: sort by norm, clip the k largest to the largest unclipped norm."""
  x = x.copy()
  n = len(x)
  norms = sorted((np.linalg.norm(v), i) for i, v in enumerate(x))
  k = int(2 * f / n * (n - f))
  if k == 0:
    return x
  threshold = norms[n - k - 1][0]
  for norm, i in norms[n - k:]:
    if norm > threshold:
      x[i] = x[i] * threshold / norm
  return x


def test_arc_bucketing_clipping_match_their_definitions(x64):
  rng = np.random.RandomState(1)
  x = rng.randn(7, 3) * rng.uniform(0.1, 5, size=(7, 1))
  for f in (0, 1, 2, 3):
    np.testing.assert_allclose(_jitted(decentral.arc, f)(jnp.asarray(x)), _arc_oracle(x, f), rtol=1e-12)
  c = 1.5
  want = np.array([v * min(1, c / np.linalg.norm(v)) for v in x])
  np.testing.assert_allclose(_jitted(decentral.clipping, 0, c=c)(jnp.asarray(x)), want, rtol=1e-12)
  key = jax.random.key(3)
  perm = np.asarray(jax.random.permutation(key, 7))
  want = np.stack([x[perm[0:3]].mean(0), x[perm[3:6]].mean(0), x[perm[6:]].mean(0)])
  got = _jitted(decentral.bucketing, 1, s=3)(jnp.asarray(x), key=key)
  np.testing.assert_allclose(got, want, rtol=1e-12)


def _flag_oracle(x, y0, r, iters, eps=1e-7):
  """The Flag Aggregator code path (flag.py + irls_flag + flag_mean_iteration, lambda = 0) in NumPy."""
  xs = [v / max(np.linalg.norm(v), 1e-12) for v in x]
  y = np.linalg.qr(y0)[0][:, :r]

  def err(y):
    return sum(np.sqrt(max(1 - np.trace(y.T @ v[:, None] @ v[None, :] @ y), 0)) for v in xs)

  errs, itr, diff, y_prev = [err(y)], 1, 1.0, y
  while itr <= iters and diff > 1e-10 and errs[itr - 1] > 1e-10:
    y_prev = y
    w = [(abs(1 - np.trace(y.T @ v[:, None] @ v[None, :] @ y)) + eps) ** -0.25 for v in xs]
    a = np.stack([wi * v for wi, v in zip(w, xs)], axis=1)
    y = np.linalg.svd(a, full_matrices=False)[0][:, :r]
    errs.append(err(y))
    diff = errs[itr - 1] - errs[itr]
    itr += 1
  y = y if diff > 0 else y_prev
  return sum(y @ (y.T @ v) for v in xs) / r


@pytest.mark.parametrize('r,iters', [(1, 1), (2, 1), (2, 3)])
def test_flag_aggregator_matches_the_reference_code_path(x64, r, iters):
  rng = np.random.RandomState(r + iters)
  x = np.concatenate([rng.randn(6, 5) * 0.3 + 1.0, rng.randn(2, 5) * 4], 0)
  key = jax.random.key(7)
  # The same random start as the rule: uniform(-1/2, 1/2) from fold_in(key, leaf index) (one leaf here).
  y0 = np.asarray(jax.random.uniform(jax.random.fold_in(key, 0), (5, r), jnp.float64)) - 0.5
  got = _jitted(decentral.flag_aggregator, 0, r=r, iters=iters)(jnp.asarray(x), key=key)
  np.testing.assert_allclose(got, _flag_oracle(x, y0, r, iters), rtol=1e-8, atol=1e-10)


def _multi_metrics_oracle(x, p, num_samples=None):
  """siquanhuang/Multi-metrics defense.py: summed (1-cos)^2, L1 and norm-difference features, t S^-1 t^T; the kept
  clients averaged with weights proportional to their data-set sizes (``Multi_metrics.exec``), or uniformly."""
  n = len(x)
  cos_d, man_d, len_d = np.zeros(n), np.zeros(n), np.zeros(n)
  for i in range(n):
    for j in range(n):
      if i != j:
        cos_d[i] += (1 - x[i] @ x[j] / (np.linalg.norm(x[i]) * np.linalg.norm(x[j]))) ** 2
        man_d[i] += np.abs(x[i] - x[j]).sum()
        len_d[i] += abs(np.linalg.norm(x[i]) - np.linalg.norm(x[j]))
  t = np.stack([cos_d, man_d, len_d], 1)
  inv = np.linalg.inv(np.cov(t.T))
  scores = np.array([t[i] @ inv @ t[i] for i in range(n)])
  keep = np.argsort(scores, kind='stable')[:int(p * n)]
  weights = None if num_samples is None else np.asarray(num_samples)[keep]
  return np.average(x[keep], weights=weights, axis=0)


def test_multi_metrics_matches_the_reference_code(x64):
  rng = np.random.RandomState(5)
  x = np.concatenate([rng.randn(8, 6) * 0.5 + 1, rng.randn(2, 6) * 0.5 - 2], 0)
  got = _jitted(decentral.multi_metrics, 0, p=0.3)(jnp.asarray(x))
  np.testing.assert_allclose(got, _multi_metrics_oracle(x, 0.3), rtol=1e-10)


def test_multi_metrics_dataset_size_weights_match_the_official_defence(x64):
  rng = np.random.RandomState(7)
  x = np.concatenate([rng.randn(8, 5) * 0.5 + 1, rng.randn(2, 5) * 0.5 - 2], 0)
  sizes = rng.randint(10, 500, size=10).astype(float)
  expect = _multi_metrics_oracle(x, 0.3, sizes)
  got = jax.jit(functools.partial(similarity.multi_metrics, p=0.3))(jnp.asarray(x), num_samples=jnp.asarray(sizes))
  np.testing.assert_allclose(got, expect, rtol=1e-10)
  uniform = similarity.multi_metrics(jnp.asarray(x), p=0.3)
  np.testing.assert_allclose(uniform, _multi_metrics_oracle(x, 0.3), rtol=1e-10)  # the option: equal weights
  assert np.abs(np.asarray(uniform) - expect).max() > 1e-3  # the sizes matter on this input


def test_multi_metrics_equal_sizes_give_the_uniform_mean_and_bad_sizes_are_named(x64):
  x = jnp.asarray(np.random.RandomState(1).randn(6, 3))
  np.testing.assert_allclose(similarity.multi_metrics(x, p=0.5, num_samples=jnp.full(6, 7.0)),
                             similarity.multi_metrics(x, p=0.5), rtol=1e-12)
  with pytest.raises(ValueError, match='multi_metrics: num_samples'):
    similarity.multi_metrics(x, p=0.5, num_samples=jnp.ones(5))


def test_multi_metrics_with_sizes_runs_on_the_worker_axis():
  sizes = jnp.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
  tx = decentral.aggregate(functools.partial(similarity.multi_metrics, p=0.5, num_samples=sizes),
                           axis_name='workers')

  def step(g):
    return tx.update(g, tx.init(g))[0]

  g = jnp.asarray(np.random.RandomState(3).randn(8, 4), jnp.float32)
  ref = similarity.multi_metrics(g, p=0.5, num_samples=sizes)
  out = decentral.axis.run(step, 8)(g)  # vmap; shard_map = vmap for the rule is the conformance suite's check
  np.testing.assert_allclose(out, np.broadcast_to(ref, out.shape), rtol=1e-5, atol=1e-6)


def _foolsgold_oracle(h):
  n = len(h)
  cs = np.array([[a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) for b in h] for a in h]) - np.eye(n)
  maxcs = cs.max(1)
  for i in range(n):
    for j in range(n):
      if i != j and maxcs[i] < maxcs[j]:
        cs[i, j] *= maxcs[i] / maxcs[j]
  wv = np.clip(1 - cs.max(1), 0, 1)
  wv = wv / wv.max()
  wv[wv == 1] = .99
  with np.errstate(divide='ignore'):
    wv = np.log(wv / (1 - wv)) + 0.5
  wv[np.isinf(wv) + wv > 1] = 1
  wv[wv < 0] = 0
  return wv


def test_sybilwall_weights_are_foolsgold_on_histories(x64):
  rng = np.random.RandomState(2)
  rounds = [np.concatenate([rng.randn(5, 4), np.tile(rng.randn(1, 4) + 3, (3, 1))], 0) for _ in range(3)]
  sw = decentral.sybilwall()
  state = sw.init(jnp.asarray(rounds[0]))
  history = np.zeros_like(rounds[0])
  apply = jax.jit(functools.partial(sw.apply, f=3))
  for x in rounds:
    out, state = apply(jnp.asarray(x), state)
    history += x
    w = _foolsgold_oracle(history)
    np.testing.assert_allclose(out, (w[:, None] * x).sum(0) / w.sum(), rtol=1e-10)
  assert np.all(_foolsgold_oracle(history)[5:] == 0)  # the three identical Sybils are shut out


# ------------------------------------------------------------------------------------------------ properties

N, F, D = 9, 2, 5


# Every registered rule with its registered defaults, plus variants whose other defaults have other properties.
RULES = {name: decentral.one_round(registry.rules.build(name)) for name in registry.rules.names()}
RULES['geometric_median_from_median'] = functools.partial(decentral.geometric_median, init='median')
RULES['bucketing+median'] = decentral.bucketing_then(decentral.median)
# Which properties each rule has (and why not, when not).
NOT_PERMUTATION_INVARIANT = {  # the pivot is row 0; the buckets follow the input order
    'nearest_neighbour_average', 'bucketing+median', 'bucketing+geometric_median'}
NOT_IDENTITY_ON_EQUAL = {'flag_aggregator'}  # returns the sum of projected *unit* vectors / r
TRANSLATION_EQUIVARIANT = {'mean', 'median', 'trimmed_mean', 'krum', 'multi_krum', 'geometric_median_from_median',
                           'nearest_neighbour_average', 'nnm+trimmed_mean', 'bucketing+median'}
NOT_ROBUST = {'mean'}


def _tree(x):
  """A two-leaf pytree per worker: a (2, 2) matrix and a vector, from rows of length 5."""
  return {'w': x[:, :4].reshape(-1, 2, 2), 'b': x[:, 4:]}


def _flat(tree):
  return np.concatenate([np.asarray(tree['w']).reshape(-1), np.asarray(tree['b']).reshape(-1)])


@functools.cache
def _rule_jitted(name):
  return jax.jit(lambda x, key: RULES[name](_tree(x), f=F, key=key))


def _apply(name, x, key=jax.random.key(0)):
  return _flat(_rule_jitted(name)(jnp.asarray(x), key))


@pytest.mark.parametrize('name', sorted(RULES))
def test_permutation_invariance_and_equal_inputs(x64, name):
  rng = np.random.RandomState(11)
  x = rng.randn(N, D)
  perm = rng.permutation(N)
  if name not in NOT_PERMUTATION_INVARIANT:
    np.testing.assert_allclose(_apply(name, x[perm]), _apply(name, x), rtol=1e-9, atol=1e-12)
  if name not in NOT_IDENTITY_ON_EQUAL:
    same = np.tile(rng.randn(1, D), (N, 1))
    np.testing.assert_allclose(_apply(name, same), same[0], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize('name', sorted(TRANSLATION_EQUIVARIANT))
def test_translation_equivariance(x64, name):
  rng = np.random.RandomState(12)
  x, shift = rng.randn(N, D), 10 * rng.randn(D)
  np.testing.assert_allclose(_apply(name, x + shift), _apply(name, x) + shift, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize('bad', [1e6, np.inf, -np.inf, np.nan])
@pytest.mark.parametrize('name', sorted(RULES))
def test_bounded_under_f_corrupted_rows(name, bad):
  """f rows set to 1e6 / inf / NaN: a robust rule stays near the honest rows; the mean does not (the test fails)."""
  rng = np.random.RandomState(13)
  x = rng.randn(N, D).astype(np.float32)
  x[-F:] = bad
  out = _apply(name, x)
  bound = 10 * np.abs(x[:-F]).max() * np.sqrt(D) + (N if name == 'flag_aggregator' else 0)
  bounded = bool(np.all(np.isfinite(out)) and np.linalg.norm(out) <= bound)
  assert bounded != (name in NOT_ROBUST), f'{name}: output {out} with {F} rows at {bad}'


def test_distance_precision_with_a_large_shared_offset():
  """Rows = big offset + small noise (decentralized rules see models, not gradients): float32 keeps the order."""
  rng = np.random.RandomState(14)
  noise = rng.randn(N, 2000) * 1e-3
  x = (300.0 + noise).astype(np.float32)
  want = ((noise[:, None] - noise[None]) ** 2).sum(-1)
  rs = stacked.rows(jnp.asarray(x))
  got = np.asarray(stacked.pairwise_sq_distances(rs, stacked.finite_rows(rs)))
  np.testing.assert_allclose(got, want, rtol=2e-3, atol=1e-6)


# ------------------------------------------------------------------------------------------------ resilience


def _adversarial(rng, n, f, d):
  honest = rng.randn(n - f, d)
  kinds = [rng.randn(f, d) * 100, np.tile(honest.mean(0) + 3 * honest.std(0), (f, 1)),
           np.tile(-honest.mean(0), (f, 1)), honest[rng.randint(n - f, size=f)] + 0.1]
  return honest, kinds


BOUND_CASES = [(7, 3), (9, 2), (9, 4)]  # (n, f): few shapes, so few compilations


def test_coordinatewise_rules_stay_in_the_honest_range(x64):
  """Yin et al. 2018: with at most f corrupted values, the median and the f-trimmed mean of every coordinate lie
  between the smallest and largest honest value."""
  rng = np.random.RandomState(20)
  for n, f in BOUND_CASES * 3:
    honest, kinds = _adversarial(rng, n, f, 6)
    for byz in kinds:
      x = jnp.asarray(np.concatenate([honest, byz]))
      for rule in (decentral.median, decentral.trimmed_mean):
        out = _jitted(rule, f)(x)
        assert np.all(out >= honest.min(0) - 1e-12) and np.all(out <= honest.max(0) + 1e-12)


def test_krum_selection_bound(x64):
  """If the honest updates have diameter Delta, Krum's choice is within Delta sqrt((n-f-1)/(n-2f)) of an honest
  one: an honest score is at most (n-f-1) Delta^2 and a faulty choice has at least n-2f honest terms."""
  rng = np.random.RandomState(21)
  for n, f in BOUND_CASES * 5:
    honest, kinds = _adversarial(rng, n, f, 4)
    delta = max(np.linalg.norm(a - b) for a, b in itertools.combinations(honest, 2))
    for byz in kinds:
      out = np.asarray(_jitted(decentral.krum, f)(jnp.asarray(np.concatenate([honest, byz]))))
      dist = np.linalg.norm(honest - out, axis=1).min()
      assert dist <= delta * np.sqrt((n - f - 1) / (n - 2 * f)) + 1e-9


def test_geometric_median_breakdown_bound(x64):
  """If the n-f honest points lie in B(c, r), the geometric median is within 2r(n-f)/(n-2f) of c (for |z-c| = D,
  moving to c lowers the objective by at least (n-f)(D-2r) - fD)."""
  rng = np.random.RandomState(22)
  for n, f in BOUND_CASES * 3:
    honest, kinds = _adversarial(rng, n, f, 3)
    c = honest.mean(0)
    r = np.linalg.norm(honest - c, axis=1).max()
    gm = _jitted(decentral.geometric_median, f, nu=1e-9, iters=300, init='median')
    for byz in kinds:
      z = gm(jnp.asarray(np.concatenate([honest, byz])))
      assert np.linalg.norm(np.asarray(z) - c) <= 2 * r * (n - f) / (n - 2 * f) + 1e-6


def test_centered_clipping_faulty_influence_is_at_most_f_tau_over_n(x64):
  """Karimireddy et al. 2021: each faulty worker moves the centre by at most tau/n per clipping iteration."""
  rng = np.random.RandomState(23)
  n, f, tau = 9, 3, 0.7
  cc = decentral.centered_clipping(tau=tau)
  honest, kinds = _adversarial(rng, n, f, 4)
  v0 = rng.randn(4) * 0.1
  clipped = [(h - v0) * min(1, tau / np.linalg.norm(h - v0)) for h in honest]
  honest_only = v0 + np.sum(clipped, 0) / n
  for byz in kinds:
    out, _ = cc.apply(jnp.asarray(np.concatenate([honest, byz])), jnp.asarray(v0), f=f)
    assert np.linalg.norm(np.asarray(out) - honest_only) <= f * tau / n + 1e-12


# ------------------------------------------------------------------------------------------------ bad input


def test_rules_reject_bad_input():
  x = jnp.ones((4, 3))
  with pytest.raises(ValueError, match='f=2'):
    decentral.trimmed_mean(x, f=2)
  with pytest.raises(ValueError, match='f must be'):
    decentral.krum(x, f=-1)
  with pytest.raises(ValueError, match='convention'):
    decentral.krum(x, f=1, convention='mine')
  with pytest.raises(ValueError, match='nu'):
    decentral.geometric_median(x, nu=0.0)
  with pytest.raises(ValueError, match='tau'):
    decentral.centered_clipping(tau=-1.0)
  with pytest.raises(ValueError, match='key'):
    decentral.flag_aggregator(x)
  with pytest.raises(ValueError, match='p must'):
    decentral.multi_metrics(x, p=0.1)
  with pytest.raises(ValueError, match='s=2'):
    decentral.bucketing(jnp.ones((6, 3)), f=2, key=jax.random.key(0), s=2)
  with pytest.raises(ValueError, match='leading worker axis'):
    decentral.median({'a': jnp.ones((4, 2)), 'b': jnp.ones((3,))})
  with pytest.raises(KeyError, match='known'):
    decentral.get_rule('no-such-rule')
