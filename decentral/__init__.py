"""decentral: distributed algorithms written once per worker on a named axis.

Run them for n workers with :func:`decentral.axis.run` under vmap, shard_map or pmap. The package by concern:

- at the top: :mod:`~decentral.axis` (the worker axis), :mod:`~decentral.processes` (the multi-process runtime:
  one process per host), :mod:`~decentral.ledger` (bytes on the wire),
  :mod:`~decentral.stacked` (the stacked-array helpers rules, attacks and pre-aggregations share),
  :mod:`~decentral.checks` (argument checks) and :mod:`~decentral.registry` (rules, attacks, compressors and
  worker-axis transforms by name);
- :mod:`decentral.robust`: aggregation rules, pre-aggregations, attacks and the :func:`aggregate` transform;
- :mod:`decentral.compression`: compressors with exact wire bytes, error feedback, DGC, FedZip, RQM;
- :mod:`decentral.local_sgd`: DiLoCo, Streaming DiLoCo, SparseLoCo, EDiT and A-EDiT;
- :mod:`decentral.pipeline`: pipeline model parallelism on a ``stage`` axis (GPipe schedule, compressed links,
  the (replica x stage) mesh) and heterogeneous SparseLoCo replicas;
- :mod:`decentral.p2p`: topologies, gossip, D-SGD, robust D-SGD and MoNNA, and the serverless seed methods:
  DFedSAM(-MGS), a single global merge, variance-corrected averaging, disrupted graphs, SA-SRRW token walks,
  DIMAT, Bristle, SybilWall gossip, MoDeST and DADAO (the last two on the event simulator);
- :mod:`decentral.federated`: federated learning: the round engine (client partitions, sampling, any local and
  server optimizer), FedAvg/FedAvgM/FedAdam/FedYogi, FedProx, FedStale/FedVARP, FedAMD, FedSpeed, FedSVD,
  curricula, DIFF2, Just One Byte, asynchronous FL (FedBuff, FedFix), FZooS and sketched updates;
- :mod:`decentral.sim`: the host-side event simulator for methods that are not lock-step.

Every public name is also here at the top (``decentral.krum``, ``decentral.diloco``, ``decentral.ring``).
"""

from decentral import axis, checks, ledger, processes, stacked
from decentral import compression, federated, local_sgd, p2p, pipeline, robust, sim
from decentral import registry
from decentral.compression import privacy
from decentral.compression.deep_gradient import dgc, scale_by_dgc
from decentral.compression.feedback import ef21, ef21_stepsize, ef21_w, error_feedback
from decentral.compression.fedzip_codec import fedzip
from decentral.compression.privacy import rqm
from decentral.compression.wire import Compressor
from decentral.federated import zeroth_order
from decentral.federated import (curriculum_algorithm, fedadam, fedamd, fedavg, fedavgm, fedprox, fedspeed_algorithm,
                                 fedstale, fedsvd_algorithm, fedvarp, fedyogi)
from decentral.federated.gradient_differences import diff2, diff2_epsilon
from decentral.federated.zeroth_order import just_one_byte
from decentral.ledger import CommStats, Ledger
from decentral.local_sgd import diloco, edit, run_a_edit, sparseloco, streaming_diloco
from decentral.p2p import modest
from decentral.p2p.bristle import bristle_dsgd, bristle_gossip, bristle_integrate
from decentral.p2p.dadao import dadao_events, dadao_run
from decentral.p2p.dimat import align_mlp, dimat_dsgd, dimat_gossip, dimat_merge, permute_mlp
from decentral.p2p.disruption import after_failure, disrupted_dsgd, disrupted_gossip
from decentral.p2p.flatness import dfedsam, multi_gossip, sam_gradient
from decentral.p2p.merging import global_merge, scheduled_gossip, single_merge_dsgd
from decentral.p2p.random_walk import metropolis_hastings_walk, sa_srrw, self_repellent_kernel
from decentral.p2p.sgd import (dsgd, gossip_step, honest_pivot_mean, monna, nearest_to_self, optimal_attack_for,
                               robust_dsgd, robust_gossip)
from decentral.p2p.sybil_gossip import (sybil_gossip_init, sybil_gossip_step, sybilwall_dsgd, sybilwall_gossip,
                                        sybilwall_mix)
from decentral.p2p.variance_correction import (variance_corrected_dsgd, variance_corrected_gossip,
                                               variance_corrected_mean)
from decentral.p2p.topology import (Topology, barabasi_albert, circulant, complete, erdos_renyi, exponential,
                                    from_adjacency, gossip, metropolis_hastings, renormalised, ring, spectral_gap,
                                    star, torus, uniform_weights)
from decentral.registry import get_attack, get_rule
from decentral.robust import attacks, preaggregation
from decentral.robust.aggregation import AggregateState, StatefulRule, aggregate, mean, one_round
from decentral.robust.attacks import (a_little_is_enough, byzantine, fall_of_empires, flip_labels, gaussian, infinite,
                                      inject, inner_product_manipulation, label_flipping, mimic, not_a_number,
                                      optimal_a_little_is_enough, optimal_inner_product_manipulation, replace_faulty,
                                      sign_flipping, strongest)
from decentral.robust.cclip import centered_clipping
from decentral.robust.distance import krum, multi_krum, nearest_neighbour_average
from decentral.robust.flag import flag_aggregator
from decentral.robust.order_statistics import median, trimmed_mean
from decentral.robust.preaggregation import (arc, arc_then, bucketing, bucketing_then, clipping, nnm, nnm_then,
                                             preaggregated)
from decentral.robust.similarity import multi_metrics, sybilwall
from decentral.robust.weiszfeld import geometric_median
from decentral.sim import events as async_sim

__all__ = [
    # subpackages and modules
    'axis', 'checks', 'ledger', 'processes', 'stacked', 'registry', 'compression', 'federated', 'local_sgd', 'p2p',
    'pipeline', 'robust', 'sim', 'attacks', 'preaggregation', 'privacy', 'zeroth_order', 'async_sim',
    # robust: the transform, rules, pre-aggregations, attacks
    'AggregateState', 'StatefulRule', 'aggregate', 'mean', 'one_round', 'get_rule', 'get_attack', 'median',
    'trimmed_mean',
    'krum', 'multi_krum', 'nearest_neighbour_average', 'geometric_median', 'centered_clipping', 'flag_aggregator',
    'multi_metrics', 'sybilwall', 'arc', 'arc_then', 'bucketing', 'bucketing_then', 'clipping', 'nnm', 'nnm_then',
    'preaggregated', 'a_little_is_enough', 'byzantine', 'fall_of_empires', 'flip_labels', 'gaussian', 'infinite',
    'inject', 'inner_product_manipulation', 'label_flipping', 'mimic', 'not_a_number', 'optimal_a_little_is_enough',
    'optimal_inner_product_manipulation', 'replace_faulty', 'sign_flipping', 'strongest',
    # p2p: topologies, gossip, D-SGD, MoNNA
    'Topology', 'barabasi_albert', 'circulant', 'complete', 'erdos_renyi', 'exponential', 'from_adjacency',
    'gossip', 'metropolis_hastings', 'renormalised', 'ring', 'spectral_gap', 'star', 'torus', 'uniform_weights',
    'dsgd', 'gossip_step', 'honest_pivot_mean', 'monna', 'nearest_to_self', 'optimal_attack_for', 'robust_dsgd',
    'robust_gossip',
    # p2p: DFedSAM(-MGS), single global merge, variance-corrected averaging, disrupted graphs
    'dfedsam', 'multi_gossip', 'sam_gradient', 'global_merge', 'scheduled_gossip', 'single_merge_dsgd',
    'variance_corrected_dsgd', 'variance_corrected_gossip', 'variance_corrected_mean', 'after_failure',
    'disrupted_dsgd', 'disrupted_gossip',
    # p2p: SA-SRRW token SGD, DIMAT merging, Bristle integration, SybilWall gossip
    'sa_srrw', 'metropolis_hastings_walk', 'self_repellent_kernel', 'dimat_merge', 'align_mlp', 'permute_mlp',
    'bristle_integrate', 'sybil_gossip_init', 'sybil_gossip_step', 'sybilwall_mix', 'dimat_dsgd', 'dimat_gossip',
    'bristle_dsgd', 'bristle_gossip', 'sybilwall_dsgd', 'sybilwall_gossip',
    # p2p: MoDeST on the event simulator (decentral.modest.simulate / replay)
    'modest',
    # p2p: DADAO on independent Poisson clocks (decentral.dadao_events, then decentral.dadao_run)
    'dadao_events', 'dadao_run',
    # compression, error feedback, DGC, FedZip, RQM; the ledger
    'Compressor', 'error_feedback', 'ef21', 'ef21_stepsize', 'ef21_w', 'dgc', 'scale_by_dgc', 'fedzip', 'rqm',
    'CommStats', 'Ledger',
    # local SGD, EDiT, Just One Byte
    'diloco', 'streaming_diloco', 'sparseloco', 'edit', 'run_a_edit', 'just_one_byte',
    # differential privacy on the worker axis: DIFF2
    'diff2', 'diff2_epsilon',
    # federated learning on the round engine
    'fedavg', 'fedavgm', 'fedadam', 'fedyogi', 'fedprox', 'fedstale', 'fedvarp', 'fedamd', 'fedspeed_algorithm',
    'fedsvd_algorithm', 'curriculum_algorithm',
]
