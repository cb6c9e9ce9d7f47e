"""Differential privacy: DP-SGD, DiceSGD, batch sampling and accounting through ``dp_accounting``.

- :mod:`optim.privacy.clipping`: per-example clipping (global norm or per-layer budgets; the rule for zero and
  non-finite examples);
- :mod:`optim.privacy.dpsgd`: :func:`dp_sgd_aggregate` (clip, sum, noise once, divide by the expected batch) and
  :func:`dp_sgd`;
- :mod:`optim.privacy.dicesgd`: DiceSGD (clipped error feedback), :func:`dice_sgd_aggregate` and :func:`dice_sgd`;
- :mod:`optim.privacy.sampling`: Poisson batches of fixed shape (indices + mask) and shuffled batches;
- :mod:`optim.privacy.accounting`: :func:`epsilon` and :func:`noise_multiplier_for` by the RDP or PLD accountant;
- :mod:`optim.privacy.tradeoff`: f-DP trade-off curves (PLD or CLT) and the noise floor of "Fundamental
  Limitations" (arXiv 2601.10237);
- :mod:`optim.privacy.audit`: the Bayesian privacy audit (arXiv 2206.05199) beside Clopper-Pearson;
- :mod:`optim.privacy.microbatch`: :func:`single_microbatch`, a per-example transform fed a batch's mean gradient.
"""

from optim.privacy import accounting, clipping, microbatch, sampling
from optim.privacy.accounting import dp_sgd_event, epsilon, event_epsilon, noise_multiplier_for
from optim.privacy.clipping import clip_per_example, clipped_sum, global_norms, sensitivity
from optim.privacy.dicesgd import DiceSGDState, dice_sgd, dice_sgd_aggregate
from optim.privacy.dpsgd import DPAggregateState, dp_sgd, dp_sgd_aggregate
from optim.privacy.microbatch import single_microbatch
from optim.privacy.sampling import PoissonBatch, poisson_batch, poisson_batches, shuffled_batch, shuffled_batches
from optim.privacy import audit, tradeoff
from optim.privacy.audit import AttackCounts, clopper_pearson_interval, credible_interval, epsilon_lower_bound
from optim.privacy.tradeoff import gaussian_tradeoff, noise_lower_bound, poisson_tradeoff, separation_lower_bound

__all__ = ['accounting', 'clipping', 'microbatch', 'sampling', 'dp_sgd_event', 'epsilon', 'event_epsilon',
           'noise_multiplier_for', 'clip_per_example', 'clipped_sum', 'global_norms', 'sensitivity', 'DiceSGDState',
           'dice_sgd', 'dice_sgd_aggregate', 'DPAggregateState', 'dp_sgd', 'dp_sgd_aggregate', 'single_microbatch',
           'PoissonBatch', 'poisson_batch', 'poisson_batches', 'shuffled_batch', 'shuffled_batches']
__all__ += ['audit', 'tradeoff', 'AttackCounts', 'clopper_pearson_interval', 'credible_interval',
            'epsilon_lower_bound', 'gaussian_tradeoff', 'noise_lower_bound', 'poisson_tradeoff',
            'separation_lower_bound']
