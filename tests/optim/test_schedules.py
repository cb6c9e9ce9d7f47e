"""Linear decay and the refined schedule: the closed form by hand, constant norms give linear decay."""

import numpy as np
import optax
import pytest
from scipy.ndimage import median_filter

from optim import linear_decay_schedule, refined_schedule
from optim.schedules import median_smooth, refine


@pytest.mark.parametrize('total', [2, 7, 100])
def test_constant_norms_give_linear_decay(total):
  lin = linear_decay_schedule(0.3, total)
  ref = refined_schedule(np.full(total, 2.5), 0.3)
  want = 0.3 * (total - 1 - np.arange(total)) / (total - 1)  # the paper's 1 - t/T, 0-indexed
  np.testing.assert_allclose([lin(t) for t in range(total)], want, rtol=1e-6, atol=1e-8)
  np.testing.assert_allclose([ref(t) for t in range(total)], want, rtol=1e-6, atol=1e-8)
  assert float(ref(total + 5)) == 0.0 and float(lin(total + 5)) == 0.0


def test_refined_closed_form_by_hand():
  g = np.array([4.0, 2.0, 1.0, 1.0, 0.5, 2.0])
  for norm, power in (('l2', 2), ('l1', 1)):
    w = g ** -power
    eta = np.array([w[t] * sum(w[t + 1:]) / sum(w) for t in range(len(g))])  # eta_{T-1} = 0
    np.testing.assert_allclose(refine(g, norm=norm, smoothing=0.0), eta / eta.max(), rtol=1e-12)
  sched = refined_schedule(g, peak_value=0.1, smoothing=0.0)
  w = g ** -2.0
  eta = np.array([w[t] * sum(w[t + 1:]) for t in range(len(g))])
  np.testing.assert_allclose([sched(t) for t in range(6)], 0.1 * eta / eta.max(), rtol=1e-6)


def test_large_early_norms_give_warmup_and_fast_annealing():
  # The paper's observation: gradient norms that fall early on produce a warm-up; the end always anneals to 0.
  t = np.arange(200)
  norms = 1.0 + 9.0 * np.exp(-t / 20.0)
  eta = refine(norms)
  assert 10 < np.argmax(eta) < 100 and eta[0] < 0.2 and eta[-1] == 0.0
  assert np.all(np.diff(eta[150:]) < 0)


@pytest.mark.parametrize('n, width', [(50, 5), (101, 11), (30, 1)])
def test_median_smoothing_is_the_authors_recipe(n, width):
  g = np.random.RandomState(0).lognormal(size=n)
  pad = 2 * width
  want = median_filter(np.pad(g, (0, pad), mode='reflect'), size=width, mode='nearest')[:-pad]
  np.testing.assert_allclose(median_smooth(g, width), want, rtol=0, atol=0)


def test_resampling_and_warmup():
  sched = refined_schedule(np.ones(10), 1.0, total_steps=41)  # constant norms resampled: linear over 41 steps
  np.testing.assert_allclose([sched(t) for t in range(41)], 1 - np.arange(41) / 40, atol=1e-6)
  warm = linear_decay_schedule(2.0, total_steps=10, warmup_steps=4)
  np.testing.assert_allclose([warm(t) for t in range(10)],
                             [0.0, 0.5, 1.0, 1.5, 2.0, 1.6, 1.2, 0.8, 0.4, 0.0], atol=1e-6)
  assert isinstance(optax.inject_hyperparams(optax.sgd)(learning_rate=sched), optax.GradientTransformation)


def test_bad_inputs_are_named():
  with pytest.raises(ValueError, match='grad_norms'):
    refine([1.0, -2.0, 3.0])
  with pytest.raises(ValueError, match='grad_norms'):
    refine([1.0])
  with pytest.raises(ValueError, match='norm'):
    refine([1.0, 2.0], norm='l3')
  with pytest.raises(ValueError, match='total_steps'):
    linear_decay_schedule(1.0, total_steps=3, warmup_steps=2)
  with pytest.raises(ValueError, match='peak_value'):
    refined_schedule([1.0, 2.0], peak_value=float('inf'))
