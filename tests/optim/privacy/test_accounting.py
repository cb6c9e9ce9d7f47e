"""Accounting: epsilon equals dp_accounting's own accountants for the same (sigma, q, steps, delta), RDP and PLD;
the inverse round-trips; shuffling is accounted without amplification; truncated Poisson goes through PLD."""

import logging
import math

import dp_accounting
import pytest
from dp_accounting import pld, rdp

from optim import privacy
from optim.privacy import accounting

SETTINGS = [(1.1, 256 / 60000, 2000, 1e-5), (0.8, 0.01, 500, 1e-6), (3.0, 0.1, 50, 1e-5)]


def _direct(accountant, sigma, q, steps, delta):
  acc = rdp.RdpAccountant() if accountant == 'rdp' else pld.PLDAccountant(value_discretization_interval=1e-4)
  acc.compose(dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps)
  return acc.get_epsilon(delta)


@pytest.mark.parametrize('accountant', accounting.ACCOUNTANTS)
@pytest.mark.parametrize('sigma,q,steps,delta', SETTINGS)
def test_epsilon_is_dp_accountings(accountant, sigma, q, steps, delta):
  assert privacy.epsilon(sigma, q, steps, delta, accountant=accountant) == pytest.approx(
      _direct(accountant, sigma, q, steps, delta), rel=1e-12)


@pytest.mark.parametrize('accountant,targets', [('rdp', (0.5, 2.0, 8.0)), ('pld', (2.0,))])
def test_noise_multiplier_round_trips(accountant, targets):
  q, steps, delta, kw = 0.02, 100, 1e-5, dict(accountant=accountant, pld_discretization=1e-3)
  for target in targets:
    sigma = privacy.noise_multiplier_for(target, q, steps, delta, tol=1e-4, **kw)
    assert privacy.epsilon(sigma, q, steps, delta, **kw) <= target * (1 + 1e-9)
    assert privacy.epsilon(sigma - 1e-3, q, steps, delta, **kw) > target  # and it is the smallest such sigma


def test_shuffle_composes_one_gaussian_per_epoch():
  q, steps, sigma, delta = 0.1, 25, 2.0, 1e-5  # 10 steps per epoch: 3 epochs touched
  acc = rdp.RdpAccountant()
  acc.compose(dp_accounting.GaussianDpEvent(sigma), 3)
  assert privacy.epsilon(sigma, q, steps, delta, sampling='shuffle') == pytest.approx(acc.get_epsilon(delta))
  # no amplification: shuffled batches spend more than Poisson ones at the same rate
  assert privacy.epsilon(sigma, q, steps, delta, sampling='shuffle') > privacy.epsilon(sigma, q, steps, delta)


def test_truncated_poisson_is_accounted_by_pld_only():
  kw = dict(truncated_batch_size=8, dataset_size=50)
  event = accounting.dp_sgd_event(1.0, 0.1, 3, **kw)
  assert isinstance(event.event, dp_accounting.TruncatedSubsampledGaussianDpEvent)
  acc = pld.PLDAccountant(value_discretization_interval=1e-3)
  acc.compose(event)
  eps = privacy.epsilon(1.0, 0.1, 3, 1e-5, accountant='pld', pld_discretization=1e-3, **kw)
  assert math.isfinite(eps) and eps == pytest.approx(acc.get_epsilon(1e-5))
  with pytest.raises(ValueError, match='does not support'):
    privacy.epsilon(1.0, 0.1, 3, 1e-5, accountant='rdp', **kw)


def test_no_noise_is_not_private_and_bad_input_is_named():
  assert privacy.epsilon(0.0, 0.1, 10, 1e-5) == math.inf
  with pytest.raises(ValueError, match='sampling_rate'):
    privacy.epsilon(1.0, 1.5, 10, 1e-5)
  with pytest.raises(ValueError, match='accountant'):
    privacy.epsilon(1.0, 0.1, 10, 1e-5, accountant='moments')
  with pytest.raises(ValueError, match='delta'):
    privacy.epsilon(1.0, 0.1, 10, 0.0)


def test_dropped_order_warnings_are_quiet_only_inside_the_accountant(caplog):
  # At q = 0.9, sigma = 0.5 dp_accounting warns that small orders fail to converge; epsilon (a minimum over the
  # orders kept) is unaffected, so polyak hides those lines, and only while its own accountant call runs.
  absl_logger = logging.getLogger('absl')
  filters = list(absl_logger.filters)
  with caplog.at_level(logging.WARNING, logger='absl'):
    eps = privacy.epsilon(0.5, 0.9, 10, 1e-5)
  assert 'failed to converge' not in caplog.text
  assert absl_logger.filters == filters
  assert eps == pytest.approx(_direct('rdp', 0.5, 0.9, 10, 1e-5))
