"""PBM against binomial laws by hand; RQM and PBM under client subsampling against the mixtures' divergences."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from dp_accounting.pld import privacy_loss_distribution as pld_lib
from scipy import stats

from decentral.compression import poisson_binomial as pb
from decentral.compression import privacy


def _binomial_pmf(x, c, m, theta):
  return stats.binom.pmf(np.arange(m + 1), m, 0.5 + theta * x / c)


@pytest.mark.parametrize('m,theta,alpha', [(4, 0.25, 2.0), (15, 0.1, 3.5), (7, 0.2, 1.5)])
def test_pbm_rdp_is_the_largest_divergence_between_binomial_laws(m, theta, alpha):
  xs = np.linspace(-1, 1, 9)
  laws = [_binomial_pmf(x, 1.0, m, theta) for x in xs]
  sup = max(privacy.renyi_divergence(p, r, alpha) for p in laws for r in laws)
  np.testing.assert_allclose(pb.pbm_rdp(alpha, m=m, theta=theta), sup, rtol=1e-10)


def _mixture_rdp(p, r, gamma, alpha):
  """D_alpha of (1 - gamma) [absent] + gamma P against (1 - gamma) [absent] + gamma R, written out."""
  mix = lambda u: np.concatenate([[1 - gamma], gamma * u])
  return privacy.renyi_divergence(mix(p), mix(r), alpha)


@pytest.mark.parametrize('dims', [1, 2])
def test_subsampled_rqm_rdp_is_the_mixtures_divergence(dims):
  c, delta, m, q, gamma, alpha = 1.0, 1.5, 4, 0.5, 0.1, 3.0
  xs = privacy.worst_case_inputs(c=c, delta=delta, m=m)
  laws = [privacy.output_distribution(float(x), c=c, delta=delta, m=m, q=q) for x in xs]
  # Every pair of d-dimensional inputs from the per-coordinate worst cases: the product law over m^d outcomes.
  best = 0.0
  for pair_in, pair_out in itertools.product(itertools.product(range(len(laws)), repeat=dims), repeat=2):
    p = np.ravel(math.prod(np.ix_(*[laws[i] for i in pair_in]))) if dims > 1 else laws[pair_in[0]]
    r = np.ravel(math.prod(np.ix_(*[laws[i] for i in pair_out]))) if dims > 1 else laws[pair_out[0]]
    best = max(best, _mixture_rdp(p, r, gamma, alpha))
  ours = privacy.rdp_curve([alpha], c=c, delta=delta, m=m, q=q, dims=dims, sampling_prob=gamma)[0]
  np.testing.assert_allclose(ours, best, rtol=1e-10)
  assert ours < privacy.rdp_curve([alpha], c=c, delta=delta, m=m, q=q, dims=dims)[0]  # amplification


def test_subsampled_pbm_and_the_pld_of_the_mixture_agree_with_the_rdp_conversion():
  m, theta, gamma, target = 3, 0.2, 0.05, 1e-5
  p, r = _binomial_pmf(1.0, 1.0, m, theta), _binomial_pmf(-1.0, 1.0, m, theta)
  mix = lambda u: {'absent': math.log1p(-gamma), **{k: math.log(gamma * v) for k, v in enumerate(u)}}
  pld = pld_lib.from_two_probability_mass_functions(mix(r), mix(p), value_discretization_interval=1e-4)
  pld = pld.self_compose(20)
  eps_rdp, _ = pb.pbm_epsilon(target, m=m, theta=theta, rounds=20, sampling_prob=gamma)
  eps_pld = pld.get_epsilon_for_delta(target)
  # dp_accounting's PLD of the same exact mixtures is tighter than the RDP conversion, and not by orders.
  assert 0.3 * eps_rdp < eps_pld <= eps_rdp


def test_pbm_sampler_is_unbiased_with_the_stated_variance_and_bytes():
  c, m, theta = 2.0, 15, 0.2
  comp = pb.pbm(c, m, theta)
  x = jnp.full((20000,), 0.7)
  out = np.asarray(comp(x, jax.random.key(1)))
  var = pb.pbm_variance(0.7, c=c, m=m, theta=theta)
  assert abs(out.mean() - 0.7) < 4 * math.sqrt(var / x.size)
  np.testing.assert_allclose(out.var(), var, rtol=0.06)
  payload = comp.compress(x[:10], jax.random.key(2))
  assert len(comp.encode(payload, (10,), jnp.float32)) == comp.nbytes((10,), jnp.float32) == 5
  np.testing.assert_array_equal(comp.decode(comp.encode(payload, (10,), jnp.float32), (10,), jnp.float32)['codes'],
                                payload['codes'])


def test_bad_input_is_named():
  with pytest.raises(ValueError, match='theta'):
    pb.pbm(1.0, 15, 0.3)
  with pytest.raises(ValueError, match='sampling_prob'):
    privacy.rdp_curve([2.0], c=1.0, delta=1.5, m=4, q=0.5, sampling_prob=0.0)
