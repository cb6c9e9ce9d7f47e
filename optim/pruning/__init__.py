"""Pruning with second-order information: M-FAC's static inverse empirical Fisher and OBS (arXiv 2107.03356)."""

from optim.pruning.obs import magnitude_prune, obs_prune, obs_scores
from optim.pruning.static_fisher import (StaticFisherInverse, fisher_inverse_diagonal, fisher_inverse_entry,
                                         fisher_inverse_product, static_fisher_inverse)

__all__ = ['StaticFisherInverse', 'fisher_inverse_diagonal', 'fisher_inverse_entry', 'fisher_inverse_product',
           'magnitude_prune', 'obs_prune', 'obs_scores', 'static_fisher_inverse']
