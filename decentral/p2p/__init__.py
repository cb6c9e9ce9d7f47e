"""Peer-to-peer training: communication graphs, gossip, decentralized SGD and its robust variants (MoNNA).

- :mod:`decentral.p2p.topology`: a :class:`Topology` is data (a mixing matrix and, for circulant and torus
  graphs, its permutations), with :func:`gossip`, one mixing step on the worker axis, and :func:`neighbours`,
  what a worker receives before it mixes;
- :mod:`decentral.p2p.sgd`: D-SGD, robust D-SGD with any aggregation rule, and MoNNA, each worker holding its
  own parameters and mixing them with its neighbours'; :func:`sgd_then`, the local step then a mixing, which
  every gossip method below is built from;
- :mod:`decentral.p2p.flatness`: DFedSAM and DFedSAM-MGS, local SAM steps then Q gossip steps per round;
- :mod:`decentral.p2p.merging`: sparse or late gossip and a single global merge;
- :mod:`decentral.p2p.variance_correction`: variance-corrected averaging of uncorrelated models;
- :mod:`decentral.p2p.disruption`: node and link loss at a chosen round, and how the survivors mix;
- :mod:`decentral.p2p.random_walk`: token SGD driven by a self-repellent random walk (SA-SRRW);
- :mod:`decentral.p2p.dimat`: DIMAT merging, neighbours permutation-aligned by activation matching, then mixed
  (on the host, and on the worker axis with :mod:`decentral.p2p.assignment`, linear assignment inside jit);
- :mod:`decentral.p2p.bristle`: Bristle-style distance prioritising and class-wise filtering of output layers;
- :mod:`decentral.p2p.sybil_gossip`: SybilWall's probabilistic gossip of non-neighbours' updates;
- :mod:`decentral.p2p.modest`: MoDeST, hash-sampled trainers and aggregators per round on the event simulator;
- :mod:`decentral.p2p.dadao`: DADAO, accelerated decoupled gradient and gossip steps on independent Poisson clocks.

No server: every worker is a peer and the graph says who hears whom (the server-based methods are in
:mod:`decentral.robust`, :mod:`decentral.compression` and :mod:`decentral.local_sgd`).
"""

from decentral.p2p import (assignment, bristle, dadao, dimat, disruption, flatness, merging, modest, random_walk,
                           sgd, sybil_gossip, topology, variance_correction)
from decentral.p2p.assignment import linear_assignment
from decentral.p2p.bristle import (BristleState, bristle_dsgd, bristle_gossip, bristle_integrate, class_scores,
                                   head_logits, prioritise)
from decentral.p2p.dadao import dadao_constants, dadao_events, dadao_replay, dadao_run
from decentral.p2p.dimat import (DimatState, align_mlp, dense_activations, dimat_dsgd, dimat_gossip, dimat_merge,
                                 hidden_activations, match_units, mlp_activations, mlp_apply, mlp_spec, permute_mlp,
                                 permute_tree, unit_similarity)
from decentral.p2p.disruption import after_failure, disrupted_dsgd, disrupted_gossip
from decentral.p2p.flatness import dfedsam, multi_gossip, sam_gradient
from decentral.p2p.merging import global_merge, scheduled_gossip, single_merge_dsgd
from decentral.p2p.random_walk import (WalkState, metropolis_hastings_walk, sa_srrw, self_repellent_kernel,
                                       walk_init, walk_step)
from decentral.p2p.sgd import (RobustGossipState, dsgd, gossip_step, honest_pivot_mean, monna, nearest_to_self,
                               need_params, optimal_attack_for, robust_dsgd, robust_gossip, sgd_then)
from decentral.p2p.sybil_gossip import (SybilGossipState, SybilWallState, forwarding_coins, sybil_gossip_init,
                                        sybil_gossip_step, sybil_weights, sybilwall_dsgd, sybilwall_gossip,
                                        sybilwall_mix)
from decentral.p2p.topology import (Topology, barabasi_albert, circulant, complete, erdos_renyi, exponential,
                                    from_adjacency, gossip, metropolis_hastings, neighbours, renormalised, ring,
                                    spectral_gap, star, torus, uniform_weights)
from decentral.p2p.variance_correction import (variance_corrected_dsgd, variance_corrected_gossip,
                                               variance_corrected_mean)

__all__ = [
    # modules
    'assignment', 'bristle', 'dadao', 'dimat', 'disruption', 'flatness', 'merging', 'modest', 'random_walk', 'sgd',
    'sybil_gossip', 'topology', 'variance_correction',
    # topologies and gossip
    'Topology', 'barabasi_albert', 'circulant', 'complete', 'erdos_renyi', 'exponential', 'from_adjacency',
    'gossip', 'metropolis_hastings', 'neighbours', 'renormalised', 'ring', 'spectral_gap', 'star', 'torus',
    'uniform_weights',
    # lock-step methods on the worker axis
    'RobustGossipState', 'dsgd', 'gossip_step', 'honest_pivot_mean', 'monna', 'nearest_to_self', 'need_params',
    'optimal_attack_for', 'robust_dsgd', 'robust_gossip', 'sgd_then', 'dfedsam', 'multi_gossip', 'sam_gradient',
    'global_merge', 'scheduled_gossip', 'single_merge_dsgd', 'variance_corrected_dsgd', 'variance_corrected_gossip',
    'variance_corrected_mean', 'after_failure', 'disrupted_dsgd', 'disrupted_gossip',
    # merging, filtering and Sybil resistance
    'align_mlp', 'dimat_merge', 'hidden_activations', 'match_units', 'mlp_apply', 'permute_mlp', 'DimatState',
    'dense_activations', 'dimat_dsgd', 'dimat_gossip', 'mlp_activations', 'mlp_spec', 'permute_tree',
    'unit_similarity', 'linear_assignment',
    'bristle_integrate', 'class_scores', 'head_logits', 'prioritise', 'BristleState', 'bristle_dsgd',
    'bristle_gossip', 'SybilGossipState', 'sybil_gossip_init', 'sybil_gossip_step', 'sybil_weights', 'sybilwall_mix',
    'SybilWallState', 'forwarding_coins', 'sybilwall_dsgd', 'sybilwall_gossip',
    # token walks and event-driven methods
    'WalkState', 'metropolis_hastings_walk', 'sa_srrw', 'self_repellent_kernel', 'walk_init', 'walk_step',
    'dadao_constants', 'dadao_events', 'dadao_replay', 'dadao_run',
]
