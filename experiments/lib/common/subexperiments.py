"""Scripts made of named sub-experiments (communication, federated, decentralized, asynchronous): one dispatcher.

Such a script's library is a package whose modules each define

    run(sub_config, writer) -> list[dict]   # writes through the run's results.Writer, returns the summary rows
    table(rows) -> str                      # the summary as text
    CLAIMS                                  # the paper claims it measures

and whose ``__init__`` lists them in a dict and exports what :class:`SubExperiments` builds from it, so the
script sees one library (``run``, ``table``, ``CLAIMS``) and ``config.experiment`` picks the module, run with
``config.<experiment>``.

>>> import types
>>> demo = types.SimpleNamespace(CLAIMS=(), table=lambda rows: f'{len(rows)} rows')
>>> subs = SubExperiments({'demo': demo})
>>> subs.table({'experiment': 'demo', 'rows': [{}, {}]})
'2 rows'
>>> subs.module('dmeo')
Traceback (most recent call last):
...
experiments.lib.common.usage.UsageError: unknown experiment 'dmeo'; nearest: demo
"""

from __future__ import annotations

import types
from typing import Mapping

from experiments.lib.common import results, usage


class SubExperiments:
  """``module(name)``, ``run(config, workdir)``, ``table(outputs)`` and ``claims`` over named modules."""

  def __init__(self, experiments: Mapping[str, types.ModuleType]):
    self.experiments = dict(experiments)
    self.claims = tuple(c for mod in self.experiments.values() for c in mod.CLAIMS)

  def module(self, name: str) -> types.ModuleType:
    if name not in self.experiments:
      raise usage.unknown('experiment', name, self.experiments)
    return self.experiments[name]

  def run(self, config, workdir: str) -> dict:
    """Runs ``config.experiment`` with its sub-config; returns ``{'experiment': name, 'rows': summary rows}``."""
    mod = self.module(config.experiment)
    writer = results.Writer(workdir, config)
    return {'experiment': config.experiment, 'rows': mod.run(config[config.experiment], writer)}

  def table(self, outputs: dict) -> str:
    return self.module(outputs['experiment']).table(outputs['rows'])
