"""Communication-efficient training (library code of experiments/communication.py): named sub-experiments.

``config.experiment`` picks one of :data:`EXPERIMENTS`, which runs with ``config.<experiment>`` (built in
``experiments/configs/communication.py``). Each sub-experiment is a module here with

    run(sub_config, writer) -> list[dict]   # writes through the run's results.Writer, returns the summary rows
    table(rows) -> str                      # the summary as text
    CLAIMS                                  # the paper claims it measures

- ``ef21``: EF, EF21 and EF21-W with top-k; bits to a gradient-norm target as the smoothness spread grows;
- ``dgc``: Deep Gradient Compression against dense momentum SGD, with an ablation per technique;
- ``compressors``: every codec on one real gradient: wire bytes, ratio, error, RQM's privacy;
- ``diloco``: DiLoCo, Streaming DiLoCo, SparseLoCo and EDiT against data parallel on a character transformer.
"""

from __future__ import annotations

from experiments.lib.common import subexperiments
from experiments.lib.communication import compressors, dgc, diloco, ef21

EXPERIMENTS = {'ef21': ef21, 'dgc': dgc, 'compressors': compressors, 'diloco': diloco}
_SUBEXPERIMENTS = subexperiments.SubExperiments(EXPERIMENTS)
CLAIMS = _SUBEXPERIMENTS.claims
module, run, table = _SUBEXPERIMENTS.module, _SUBEXPERIMENTS.run, _SUBEXPERIMENTS.table
