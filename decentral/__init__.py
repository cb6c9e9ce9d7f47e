"""polyak.decentral: distributed algorithms written once per worker on a named axis.

Run them for n workers with :func:`decentral.axis.run` under vmap, shard_map or pmap.
"""

from decentral import axis, compression, ledger
from decentral.aggregate import (AggregateState, StatefulRule, aggregate, get_rule, mean, register_rule,
                                 rules)
from decentral.topology import Topology, circulant, complete, gossip, ring, spectral_gap

__all__ = ['axis', 'compression', 'ledger', 'AggregateState', 'StatefulRule', 'aggregate', 'get_rule', 'mean', 'register_rule', 'rules', 'Topology', 'circulant', 'complete',
           'gossip', 'ring', 'spectral_gap']
