"""Peer-to-peer training: communication graphs, gossip, decentralized SGD and its robust variants (MoNNA).

- :mod:`decentral.p2p.topology`: a :class:`Topology` is data (a mixing matrix and, for circulant and torus
  graphs, its permutations), with :func:`gossip`, one mixing step on the worker axis;
- :mod:`decentral.p2p.sgd`: D-SGD, robust D-SGD with any aggregation rule, and MoNNA, each worker holding its
  own parameters and mixing them with its neighbours'.

No server: every worker is a peer and the graph says who hears whom (the server-based methods are in
:mod:`decentral.robust`, :mod:`decentral.compression` and :mod:`decentral.local_sgd`).
"""

from decentral.p2p import sgd, topology
from decentral.p2p.sgd import (RobustGossipState, dsgd, gossip_step, honest_pivot_mean, monna, nearest_to_self,
                               optimal_attack_for, robust_dsgd, robust_gossip)
from decentral.p2p.topology import (Topology, barabasi_albert, circulant, complete, erdos_renyi, exponential,
                                    from_adjacency, gossip, metropolis_hastings, renormalised, ring, spectral_gap,
                                    star, torus, uniform_weights)

__all__ = ['sgd', 'topology', 'RobustGossipState', 'dsgd', 'gossip_step', 'honest_pivot_mean', 'monna',
           'nearest_to_self', 'optimal_attack_for', 'robust_dsgd', 'robust_gossip', 'Topology', 'barabasi_albert',
           'circulant', 'complete', 'erdos_renyi', 'exponential', 'from_adjacency', 'gossip',
           'metropolis_hastings', 'renormalised', 'ring', 'spectral_gap', 'star', 'torus', 'uniform_weights']
