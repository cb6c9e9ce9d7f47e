"""Privacy accounting for DP-SGD and its relatives, strictly through Google's ``dp_accounting`` (RDP and PLD).

Nothing here bounds epsilon by hand: a training run is described as a ``dp_accounting.DpEvent`` and one of the
library's accountants turns it into epsilon at a delta. The events, by how batches were drawn:

- ``sampling='poisson'`` (every example in a step's batch independently with probability q, the sampling
  :func:`optim.privacy.poisson_batch` draws): ``SelfComposed(PoissonSampled(q, Gaussian(sigma)), steps)``, the
  subsampled Gaussian mechanism of Abadi et al. / Mironov et al., add-or-remove-one adjacency. With
  ``truncated_batch_size`` and ``dataset_size`` (fixed-capacity Poisson batches whose overflow is truncated):
  ``TruncatedSubsampledGaussianDpEvent``, which only the PLD accountant supports.
- ``sampling='shuffle'`` (a fresh permutation per epoch cut into fixed-size batches of q N): no amplification is
  claimed. Every example is in at most one batch per epoch, so the run is ``ceil(steps / floor(1/q))`` epochs,
  each one Gaussian mechanism of noise multiplier sigma on that example (``SelfComposed(Gaussian(sigma), epochs)``;
  zero-out adjacency, the example's gradient replaced by zero, so the sum moves by at most C). This is a valid upper
  bound whatever the order; the common practice of reporting the Poisson epsilon for shuffled batches is not
  (Chua et al., arXiv 2403.17673; "Fundamental Limitations of Favorable Privacy-Utility Guarantees for DP-SGD").

>>> rdp_eps = epsilon(1.1, 256 / 60000, 10000, 1e-5)               # RDP accountant
>>> pld_eps = epsilon(1.1, 256 / 60000, 10000, 1e-5, accountant='pld')
>>> round(rdp_eps, 1), pld_eps < rdp_eps                             # PLD is the tighter of the two
(2.2, True)
>>> sigma = noise_multiplier_for(2.0, 0.01, 1000, 1e-5)
>>> abs(epsilon(sigma, 0.01, 1000, 1e-5) - 2.0) < 1e-3
True
"""

from __future__ import annotations

import contextlib
import logging
import math

import dp_accounting
from dp_accounting import pld, rdp

from optim import checks
from optim.privacy import sampling as sampling_lib

ACCOUNTANTS = ('rdp', 'pld')
SAMPLINGS = ('poisson', 'shuffle')


def make_accountant(accountant: str = 'rdp', pld_discretization: float = 1e-4) -> dp_accounting.PrivacyAccountant:
  """A fresh ``dp_accounting`` accountant: RDP (``RdpAccountant()``, its default orders) or PLD
  (``PLDAccountant(value_discretization_interval=pld_discretization)``); add-or-remove-one adjacency."""
  checks.one_of('accountant', accountant, ACCOUNTANTS)
  if accountant == 'rdp':
    return rdp.RdpAccountant()
  return pld.PLDAccountant(value_discretization_interval=pld_discretization)


def dp_sgd_event(noise_multiplier: float, sampling_rate: float, steps: int, *, sampling: str = 'poisson',
                 truncated_batch_size: int | None = None, dataset_size: int | None = None
                 ) -> dp_accounting.DpEvent:
  """The ``DpEvent`` of ``steps`` DP-SGD steps (noise multiplier sigma, rate q) under the given sampling."""
  checks.non_negative('noise_multiplier', noise_multiplier)
  checks.check('sampling_rate', sampling_rate, lambda v: 0 < v <= 1, 'in (0, 1]')
  checks.one_of('sampling', sampling, SAMPLINGS)
  if not (isinstance(steps, int) and steps >= 0):
    raise ValueError(f'steps must be a non-negative int, got {steps!r}')
  gaussian = dp_accounting.GaussianDpEvent(noise_multiplier)
  if sampling == 'shuffle':
    epochs = math.ceil(steps / sampling_lib.steps_per_epoch(sampling_rate))
    return dp_accounting.SelfComposedDpEvent(gaussian, epochs)
  if truncated_batch_size is not None or dataset_size is not None:
    if truncated_batch_size is None or dataset_size is None:
      raise ValueError('truncated Poisson accounting needs both truncated_batch_size and dataset_size')
    event = dp_accounting.TruncatedSubsampledGaussianDpEvent(dataset_size, sampling_rate, truncated_batch_size,
                                                             noise_multiplier)
  else:
    event = dp_accounting.PoissonSampledDpEvent(sampling_rate, gaussian)
  return dp_accounting.SelfComposedDpEvent(event, steps)


def event_epsilon(event: dp_accounting.DpEvent, delta: float, *, accountant: str = 'rdp',
                  pld_discretization: float = 1e-4) -> float:
  """Epsilon at ``delta`` of any ``DpEvent`` by the chosen ``dp_accounting`` accountant (inf if it is not private).

  Raises ValueError if the accountant does not support the event (the truncated Poisson event needs 'pld').
  """
  checks.check('delta', delta, lambda v: 0 < v < 1, 'in (0, 1)')
  acc = make_accountant(accountant, pld_discretization)
  if not acc.supports(event):
    raise ValueError(f'the {accountant!r} accountant of dp_accounting does not support {event}')
  with _without_dropped_order_warnings():
    acc.compose(event)
    return float(acc.get_epsilon(delta))


class _DroppedOrders(logging.Filter):
  """dp_accounting's RDP warning about an order whose series fails to converge (small orders at a large q, on every
  call): epsilon is a minimum over the orders kept, still a valid bound, so the line tells the caller nothing."""

  def filter(self, record: logging.LogRecord) -> bool:
    return 'failed to converge' not in record.getMessage()


@contextlib.contextmanager
def _without_dropped_order_warnings():
  # dp_accounting logs through absl; the filter is scoped to the accountant's call, never installed globally.
  logger, quiet = logging.getLogger('absl'), _DroppedOrders()
  logger.addFilter(quiet)
  try:
    yield
  finally:
    logger.removeFilter(quiet)


def epsilon(noise_multiplier: float, sampling_rate: float, steps: int, delta: float, *, accountant: str = 'rdp',
            sampling: str = 'poisson', truncated_batch_size: int | None = None, dataset_size: int | None = None,
            pld_discretization: float = 1e-4) -> float:
  """The epsilon spent by ``steps`` DP-SGD steps at ``delta``, by ``dp_accounting``'s RDP or PLD accountant.

  Args:
    noise_multiplier: sigma, the noise std over the sensitivity (``optim.dp_sgd``'s ``noise_multiplier``).
    sampling_rate: q (Poisson: the inclusion probability; shuffle: batch size / dataset size).
    steps: the number of steps taken.
    delta: the target delta.
    accountant: ``'rdp'`` or ``'pld'``.
    sampling: ``'poisson'`` or ``'shuffle'`` (see the module docstring for the event of each).
    truncated_batch_size, dataset_size: for fixed-capacity Poisson batches, account the truncation exactly
      (PLD only).
    pld_discretization: the PLD accountant's ``value_discretization_interval``.

  Returns:
    epsilon (``inf`` when noise_multiplier is 0 and steps > 0).
  """
  event = dp_sgd_event(noise_multiplier, sampling_rate, steps, sampling=sampling,
                       truncated_batch_size=truncated_batch_size, dataset_size=dataset_size)
  return event_epsilon(event, delta, accountant=accountant, pld_discretization=pld_discretization)


def noise_multiplier_for(target_epsilon: float, sampling_rate: float, steps: int, delta: float, *,
                         accountant: str = 'rdp', sampling: str = 'poisson', truncated_batch_size: int | None = None,
                         dataset_size: int | None = None, pld_discretization: float = 1e-4,
                         tol: float = 1e-4) -> float:
  """The smallest noise multiplier (within ``tol``) whose :func:`epsilon` is at most ``target_epsilon``.

  ``dp_accounting.mechanism_calibration.calibrate_dp_mechanism`` (Brent's method) over the same event and
  accountant as :func:`epsilon`, so ``epsilon(noise_multiplier_for(e, ...), ...) <= e`` and is within the tolerance
  of it.
  """
  checks.check('target_epsilon', target_epsilon, lambda v: v > 0, 'positive')
  checks.check('delta', delta, lambda v: 0 < v < 1, 'in (0, 1)')

  def event_of(sigma):
    return dp_sgd_event(sigma, sampling_rate, steps, sampling=sampling, truncated_batch_size=truncated_batch_size,
                        dataset_size=dataset_size)

  return float(dp_accounting.calibrate_dp_mechanism(
      lambda: make_accountant(accountant, pld_discretization), event_of, target_epsilon, delta,
      bracket_interval=dp_accounting.LowerEndpointAndGuess(0.0, 1.0), tol=tol))
