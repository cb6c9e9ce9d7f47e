"""Federated learning (library code of experiments/federated.py): named sub-experiments.

``config.experiment`` picks one of :data:`EXPERIMENTS`, which runs with ``config.<experiment>`` (built in
``experiments/configs/federated.py``). Each sub-experiment is a module here with

    run(sub_config, writer) -> list[dict]   # writes through the run's results.Writer, returns the summary rows
    table(rows) -> str                      # the summary as text
    CLAIMS                                  # the paper claims it measures

- ``benchmark``: every method on digits (or MNIST) with 100 clients, Dirichlet alpha in {0.1, 1}, 10 a round:
  rounds to a target accuracy and final accuracy at the same budget;
- ``shakespeare``: tiny Shakespeare split by speaker (LEAF), a small character model, FedAvg against FedAdam;
- ``fedstale``: FedStale's beta across homogeneous and heterogeneous participation;
- ``fedamd``: FedAMD against FedAvg under partial participation, rounds to a target;
- ``fedspeed``: FedSpeed against FedAvg at a small and a large local interval, rounds to a target;
- ``fedsvd``: FedSVD, FFA-LoRA and FedAvg-LoRA under DP-SGD at equal epsilon (a LoRA head on frozen features);
- ``curricula``: curriculum, anti- and random curricula under FedAvg, Dirichlet split vs IID;

Shared helpers (partitioned image problem, MLP, one method's run) are in :mod:`experiments.lib.federated.common`.
"""

from __future__ import annotations

from experiments.lib.common import subexperiments
from experiments.lib.federated import benchmark, curricula, fedamd, fedspeed, fedstale, fedsvd, shakespeare

EXPERIMENTS = {'benchmark': benchmark, 'shakespeare': shakespeare, 'fedstale': fedstale, 'fedamd': fedamd,
               'fedspeed': fedspeed, 'fedsvd': fedsvd, 'curricula': curricula}
_SUBEXPERIMENTS = subexperiments.SubExperiments(EXPERIMENTS)
CLAIMS = _SUBEXPERIMENTS.claims
module, run, table = _SUBEXPERIMENTS.module, _SUBEXPERIMENTS.run, _SUBEXPERIMENTS.table
