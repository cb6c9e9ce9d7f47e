"""Federated learning: clients that come and go, each training on its own data, and what they send.

- :mod:`decentral.federated.zeroth_order`: Just One Byte (:func:`just_one_byte`), shared-randomness zeroth-order
  training where each client sends one int8 per perturbation and every replica applies the same update; clients
  join and leave through an ``active`` mask.

The other federated methods (client sampling, asynchronous aggregation, the federated seeds) join this
subpackage; the compressors they send with are in :mod:`decentral.compression`.
"""

from decentral.federated import zeroth_order
from decentral.federated.zeroth_order import JustOneByteState, just_one_byte, perturbation

__all__ = ['zeroth_order', 'JustOneByteState', 'just_one_byte', 'perturbation']
