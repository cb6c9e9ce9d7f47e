"""Federated learning: clients that come and go, each training on its own data, and what they send.

- :mod:`decentral.federated.zeroth_order`: Just One Byte (:func:`just_one_byte`), shared-randomness zeroth-order
  training where each client sends one int8 per perturbation and every replica applies the same update; clients
  join and leave through an ``active`` mask.
- :mod:`decentral.federated.gradient_differences`: DIFF2 (:func:`diff2`), differentially private training that
  sends clipped, noised gradient differences with periodic restarts; :func:`diff2_epsilon` its privacy.

The federated-learning core (server-based rounds of sampled clients):

- :mod:`decentral.federated.partitions`: client data (IID, Dirichlet over labels, tiny Shakespeare by speaker),
  padded to :class:`ClientData`;
- :mod:`decentral.federated.sampling`: the clients of a round (uniform, given probabilities, Bernoulli);
- :mod:`decentral.federated.rounds`: the round engine :class:`Federated`; an algorithm is an :class:`Algorithm`
  of hooks (FedAvg's by default), local training any optax optimizer (:class:`Local`);
- :mod:`decentral.federated.fedopt`: FedAvg, FedAvgM, FedAdam, FedYogi (FedAvg clients, a server optimizer);
- :mod:`decentral.federated.proximal`: FedProx;
- :mod:`decentral.federated.fedspeed`: FedSpeed (:func:`fedspeed_algorithm`: prox-correction, merged perturbed
  gradient);
- :mod:`decentral.federated.fedsvd`: FedSVD, FFA-LoRA, FedAvg-LoRA under DP-SGD (:func:`fedsvd_algorithm`,
  :func:`refactorize`);
- :mod:`decentral.federated.curricula`: curricula, anti- and random curricula with pacing, client-level curricula
  (:func:`curriculum_algorithm`);
- :mod:`decentral.federated.asynchronous`: async FedAvg, FedBuff and FedFix with speed-correcting aggregation
  weights, in simulated time on :mod:`decentral.sim`;
- :mod:`decentral.federated.surrogate_zeroth_order`: FZooS (GP and random-feature surrogate gradients with adaptive
  correction) and FedZO (SPSA), host-side;
- :mod:`decentral.federated.sketched`: count-sketched FedAvg updates, the server's inversion of a sketched gradient
  and the noise defence.

The compressors clients may send with are in :mod:`decentral.compression`.
"""

from decentral.federated import (anchor_sampling, asynchronous, curricula, fedopt, fedspeed, fedsvd,
                                 gradient_differences, partitions, proximal, rounds, sampling, sketched, stale_updates,
                                 surrogate_zeroth_order, zeroth_order)
from decentral.federated.anchor_sampling import fedamd
from decentral.federated.curricula import curriculum_algorithm
from decentral.federated.fedopt import fedadam, fedavg, fedavgm, fedyogi
from decentral.federated.fedspeed import fedspeed_algorithm
from decentral.federated.fedsvd import LoRA, fedsvd_algorithm, refactorize
from decentral.federated.gradient_differences import Diff2State, diff2, diff2_epsilon, diff2_event
from decentral.federated.partitions import ClientData
from decentral.federated.proximal import fedprox
from decentral.federated.rounds import (Algorithm, ClientContext, ClientOutput, Federated, Local, LocalStep,
                                        RoundMetrics, ServerState, Tools)
from decentral.federated.sampling import Sampler, Selection
from decentral.federated.stale_updates import fedstale, fedvarp
from decentral.federated.zeroth_order import JustOneByteState, just_one_byte, perturbation

__all__ = [
    # modules
    'anchor_sampling', 'asynchronous', 'curricula', 'fedopt', 'fedspeed', 'fedsvd', 'gradient_differences',
    'partitions', 'proximal', 'rounds', 'sampling', 'sketched', 'stale_updates', 'surrogate_zeroth_order',
    'zeroth_order',
    # the core: client data, sampling, the round engine and its hooks
    'ClientData', 'Sampler', 'Selection', 'Algorithm', 'ClientContext', 'ClientOutput', 'Federated', 'Local',
    'LocalStep', 'RoundMetrics', 'ServerState', 'Tools',
    # algorithms
    'fedavg', 'fedavgm', 'fedadam', 'fedyogi', 'fedprox', 'fedstale', 'fedvarp', 'fedamd', 'fedspeed_algorithm',
    'fedsvd_algorithm', 'LoRA', 'refactorize', 'curriculum_algorithm', 'Diff2State', 'diff2', 'diff2_epsilon',
    'diff2_event', 'JustOneByteState', 'just_one_byte', 'perturbation',
]
