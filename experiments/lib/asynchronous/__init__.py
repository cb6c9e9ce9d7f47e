"""Asynchronous and straggler-tolerant training (library code of experiments/asynchronous.py): sub-experiments.

``config.experiment`` picks one of :data:`EXPERIMENTS`, which runs with ``config.<experiment>`` (built in
``experiments/configs/asynchronous.py``). Each sub-experiment is a module here with

    run(sub_config, writer) -> list[dict]   # writes through the run's results.Writer, returns the summary rows
    table(rows) -> str                      # the summary as text
    CLAIMS                                  # the paper claims it measures

- ``async_fl``: async FedAvg with identical and speed-correcting weights, FedBuff, FedFix and sync FedAvg on
  Dirichlet-split digits with heterogeneous client speeds (Fraboni et al.);
- ``gradient_coding``: GC, SR-SGC and M-SGC against uncoded and ignoring stragglers, in simulated time
  (Krishnan, Ebrahimi & Khisti).

- ``fzoos``: FZooS against FedZO-SPSA, function queries to a target objective (Shu, Lin, Dai & Low);
- ``sketching``: count-sketched FedAvg (accuracy, bytes) and the server's inversion of sketched gradients, with
  and without noise (Song, Wang, Yu & Zhang).
"""

from __future__ import annotations

from experiments.lib.asynchronous import async_fl, fzoos, gradient_coding, sketching
from experiments.lib.common import subexperiments

EXPERIMENTS = {'async_fl': async_fl, 'gradient_coding': gradient_coding, 'fzoos': fzoos, 'sketching': sketching}
_SUBEXPERIMENTS = subexperiments.SubExperiments(EXPERIMENTS)
CLAIMS = _SUBEXPERIMENTS.claims
module, run, table = _SUBEXPERIMENTS.module, _SUBEXPERIMENTS.run, _SUBEXPERIMENTS.table
