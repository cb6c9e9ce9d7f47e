"""Decentralized learning (library code of experiments/decentralized.py): named sub-experiments.

``config.experiment`` picks one of :data:`EXPERIMENTS`, which runs with ``config.<experiment>`` (built in
``experiments/configs/decentralized.py``). Each sub-experiment is a module here with

    run(sub_config, writer) -> list[dict]   # writes through the run's results.Writer, returns the summary rows
    table(rows) -> str                      # the summary as text
    CLAIMS                                  # the paper claims it measures

- ``dfedsam``: DFedSAM and DFedSAM-MGS against D-SGD/DFedAvg as the number Q of gossip steps grows;
- ``merging``: sparse or late gossip and one global merge at the end against FedAvg;
- ``variance``: averaging uncorrelated models shrinks the weight variance; variance-corrected averaging;
- ``disruption``: node loss against link loss at a chosen round on Barabasi-Albert and Erdos-Renyi graphs;
- ``srrw``: SA-SRRW token SGD, the iterates' scaled error against the repellence alpha;
- ``dimat``: DIMAT's permutation-aligned merging against plain averaging in the first merges;
- ``bristle``: Bristle's class-wise integration against the robust gossip rules under Byzantine attacks;
- ``sybilwall``: SybilWall's gossip of non-neighbours' updates against a targeted Sybil attack;
- ``modest``: MoDeST under churn against FedAvg and D-SGD: time and bytes per node to a target accuracy;
- ``dadao``: DADAO on Poisson clocks, its linear rate and gradients per decade against kappa (sqrt(kappa)).

:mod:`experiments.lib.decentralized.harness` holds what they share: digits split over workers, the MLP, a jitted
round of local steps on the worker axis, the accuracy of every worker's model.
"""

from __future__ import annotations

from experiments.lib.common import subexperiments
from experiments.lib.decentralized import bristle, dfedsam, dimat, disruption, merging, srrw, sybilwall, variance
from experiments.lib.decentralized import modest
from experiments.lib.decentralized import dadao

EXPERIMENTS = {
    'dfedsam': dfedsam,
    'merging': merging,
    'variance': variance,
    'disruption': disruption,
    'srrw': srrw,
    'dimat': dimat,
    'bristle': bristle,
    'sybilwall': sybilwall,
    'modest': modest,
    'dadao': dadao,
}
_SUBEXPERIMENTS = subexperiments.SubExperiments(EXPERIMENTS)
CLAIMS = _SUBEXPERIMENTS.claims
module, run, table = _SUBEXPERIMENTS.module, _SUBEXPERIMENTS.run, _SUBEXPERIMENTS.table
