"""Federated learning: clients that come and go, each training on its own data, and what they send.

- :mod:`decentral.federated.zeroth_order`: Just One Byte (:func:`just_one_byte`), shared-randomness zeroth-order
  training where each client sends one int8 per perturbation and every replica applies the same update; clients
  join and leave through an ``active`` mask.
- :mod:`decentral.federated.gradient_differences`: DIFF2 (:func:`diff2`), differentially private training that
  sends clipped, noised gradient differences with periodic restarts; :func:`diff2_epsilon` its privacy.

The other federated methods (client sampling, asynchronous aggregation, the federated seeds) join this
subpackage; the compressors they send with are in :mod:`decentral.compression`.
"""

from decentral.federated import gradient_differences, zeroth_order
from decentral.federated.gradient_differences import Diff2State, diff2, diff2_epsilon, diff2_event
from decentral.federated.zeroth_order import JustOneByteState, just_one_byte, perturbation

__all__ = ['gradient_differences', 'Diff2State', 'diff2', 'diff2_epsilon', 'diff2_event', 'zeroth_order',
           'JustOneByteState', 'just_one_byte', 'perturbation']
