"""polyak.decentral: distributed algorithms written once per worker on a named axis.

Run them for n workers with :func:`decentral.axis.run` under vmap, shard_map or pmap.
"""

from decentral import axis, compression, ledger
from decentral.aggregate import (AggregateState, StatefulRule, aggregate, get_rule, mean, register_rule,
                                 rules)
from decentral.topology import Topology, circulant, complete, gossip, ring, spectral_gap
# Robust aggregation, attacks, more graphs, D-SGD and MoNNA (issue 4).
from decentral import attacks, preaggregation, robust
from decentral.attacks import (a_little_is_enough, byzantine, fall_of_empires, flip_labels, gaussian, get_attack,
                               infinite, inject, inner_product_manipulation, label_flipping, mimic, not_a_number,
                               optimal_a_little_is_enough, optimal_inner_product_manipulation, replace_faulty,
                               sign_flipping, strongest)
from decentral.dsgd import (dsgd, gossip_step, honest_pivot_mean, monna, nearest_to_self, optimal_attack_for,
                            robust_dsgd, robust_gossip)
from decentral.preaggregation import (arc, arc_then, bucketing, bucketing_then, clipping, nnm, nnm_then,
                                      preaggregated)
from decentral.robust import (centered_clipping, flag_aggregator, geometric_median, krum, median, multi_krum,
                              multi_metrics, nearest_neighbour_average, sybilwall, trimmed_mean)
from decentral.topology import (barabasi_albert, erdos_renyi, exponential, from_adjacency, metropolis_hastings,
                                renormalised, star, torus, uniform_weights)

__all__ = ['axis', 'compression', 'ledger', 'AggregateState', 'StatefulRule', 'aggregate', 'get_rule', 'mean', 'register_rule', 'rules', 'Topology', 'circulant', 'complete',
           'gossip', 'ring', 'spectral_gap',
           'attacks', 'preaggregation', 'robust', 'a_little_is_enough', 'byzantine', 'fall_of_empires',
           'flip_labels', 'gaussian', 'get_attack', 'infinite', 'inject', 'inner_product_manipulation',
           'label_flipping', 'mimic', 'not_a_number', 'optimal_a_little_is_enough',
           'optimal_inner_product_manipulation', 'replace_faulty', 'sign_flipping', 'strongest', 'dsgd',
           'gossip_step', 'honest_pivot_mean', 'monna', 'nearest_to_self', 'optimal_attack_for', 'robust_dsgd', 'robust_gossip', 'arc', 'arc_then', 'bucketing', 'bucketing_then',
           'clipping', 'nnm', 'nnm_then', 'preaggregated', 'centered_clipping', 'flag_aggregator',
           'geometric_median', 'krum', 'median', 'multi_krum', 'multi_metrics', 'nearest_neighbour_average',
           'sybilwall', 'trimmed_mean', 'barabasi_albert', 'erdos_renyi', 'exponential', 'from_adjacency',
           'metropolis_hastings', 'renormalised', 'star', 'torus', 'uniform_weights']
# Compression, error feedback, DGC, FedZip and RQM (issue 5, first half).
from decentral import dgc, error_feedback, fedzip, privacy  # modules (decentral.fedzip.fedzip is the factory)
from decentral.compression import Compressor
from decentral.dgc import scale_by_dgc
from decentral.error_feedback import ef21, ef21_stepsize, ef21_w
from decentral.ledger import CommStats, Ledger
from decentral.privacy import rqm

__all__ += ['dgc', 'error_feedback', 'fedzip', 'privacy', 'Compressor', 'scale_by_dgc', 'ef21', 'ef21_stepsize',
            'ef21_w', 'CommStats', 'Ledger', 'rqm']
# Local SGD, EDiT, the event simulator and Just One Byte (issue 5, second half).
from decentral import async_sim, edit, local_sgd, zeroth_order
from decentral.edit import run_a_edit
from decentral.local_sgd import diloco, sparseloco, streaming_diloco
from decentral.zeroth_order import just_one_byte

__all__ += ['async_sim', 'edit', 'local_sgd', 'zeroth_order', 'run_a_edit', 'diloco', 'sparseloco',
            'streaming_diloco', 'just_one_byte']
