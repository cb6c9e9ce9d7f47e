"""Peer-to-peer training: communication graphs, gossip, decentralized SGD and its robust variants (MoNNA).

- :mod:`decentral.p2p.topology`: a :class:`Topology` is data (a mixing matrix and, for circulant and torus
  graphs, its permutations), with :func:`gossip`, one mixing step on the worker axis;
- :mod:`decentral.p2p.sgd`: D-SGD, robust D-SGD with any aggregation rule, and MoNNA, each worker holding its
  own parameters and mixing them with its neighbours';
- :mod:`decentral.p2p.flatness`: DFedSAM and DFedSAM-MGS, local SAM steps then Q gossip steps per round;
- :mod:`decentral.p2p.merging`: sparse or late gossip and a single global merge;
- :mod:`decentral.p2p.variance_correction`: variance-corrected averaging of uncorrelated models;
- :mod:`decentral.p2p.disruption`: node and link loss at a chosen round, and how the survivors mix;
- :mod:`decentral.p2p.random_walk`: token SGD driven by a self-repellent random walk (SA-SRRW);
- :mod:`decentral.p2p.dimat`: DIMAT merging, neighbours permutation-aligned by activation matching, then mixed;
- :mod:`decentral.p2p.bristle`: Bristle-style distance prioritising and class-wise filtering of output layers;
- :mod:`decentral.p2p.sybil_gossip`: SybilWall's probabilistic gossip of non-neighbours' updates;
- :mod:`decentral.p2p.modest`: MoDeST, hash-sampled trainers and aggregators per round on the event simulator;
- :mod:`decentral.p2p.dadao`: DADAO, accelerated decoupled gradient and gossip steps on independent Poisson clocks.

No server: every worker is a peer and the graph says who hears whom (the server-based methods are in
:mod:`decentral.robust`, :mod:`decentral.compression` and :mod:`decentral.local_sgd`).
"""

from decentral.p2p import (bristle, dadao, dimat, disruption, flatness, merging, modest, random_walk, sgd,
                           sybil_gossip, topology, variance_correction)
from decentral.p2p.bristle import bristle_integrate, class_scores, head_logits, prioritise
from decentral.p2p.dadao import dadao_constants, dadao_events, dadao_replay, dadao_run
from decentral.p2p.dimat import align_mlp, dimat_merge, hidden_activations, match_units, mlp_apply, permute_mlp
from decentral.p2p.disruption import after_failure, disrupted_dsgd, disrupted_gossip
from decentral.p2p.flatness import dfedsam, multi_gossip, sam_gradient
from decentral.p2p.merging import global_merge, scheduled_gossip, single_merge_dsgd
from decentral.p2p.random_walk import (WalkState, metropolis_hastings_walk, sa_srrw, self_repellent_kernel,
                                       walk_init, walk_step)
from decentral.p2p.sgd import (RobustGossipState, dsgd, gossip_step, honest_pivot_mean, monna, nearest_to_self,
                               optimal_attack_for, robust_dsgd, robust_gossip)
from decentral.p2p.sybil_gossip import (SybilGossipState, sybil_gossip_init, sybil_gossip_step, sybil_weights,
                                        sybilwall_mix)
from decentral.p2p.topology import (Topology, barabasi_albert, circulant, complete, erdos_renyi, exponential,
                                    from_adjacency, gossip, metropolis_hastings, renormalised, ring, spectral_gap,
                                    star, torus, uniform_weights)
from decentral.p2p.variance_correction import (variance_corrected_dsgd, variance_corrected_gossip,
                                               variance_corrected_mean)

__all__ = [
    # modules
    'bristle', 'dadao', 'dimat', 'disruption', 'flatness', 'merging', 'modest', 'random_walk', 'sgd',
    'sybil_gossip', 'topology', 'variance_correction',
    # topologies and gossip
    'Topology', 'barabasi_albert', 'circulant', 'complete', 'erdos_renyi', 'exponential', 'from_adjacency',
    'gossip', 'metropolis_hastings', 'renormalised', 'ring', 'spectral_gap', 'star', 'torus', 'uniform_weights',
    # lock-step methods on the worker axis
    'RobustGossipState', 'dsgd', 'gossip_step', 'honest_pivot_mean', 'monna', 'nearest_to_self',
    'optimal_attack_for', 'robust_dsgd', 'robust_gossip', 'dfedsam', 'multi_gossip', 'sam_gradient',
    'global_merge', 'scheduled_gossip', 'single_merge_dsgd', 'variance_corrected_dsgd', 'variance_corrected_gossip',
    'variance_corrected_mean', 'after_failure', 'disrupted_dsgd', 'disrupted_gossip',
    # merging, filtering and Sybil resistance
    'align_mlp', 'dimat_merge', 'hidden_activations', 'match_units', 'mlp_apply', 'permute_mlp',
    'bristle_integrate', 'class_scores', 'head_logits', 'prioritise', 'SybilGossipState', 'sybil_gossip_init',
    'sybil_gossip_step', 'sybil_weights', 'sybilwall_mix',
    # token walks and event-driven methods
    'WalkState', 'metropolis_hastings_walk', 'sa_srrw', 'self_repellent_kernel', 'walk_init', 'walk_step',
    'dadao_constants', 'dadao_events', 'dadao_replay', 'dadao_run',
]
