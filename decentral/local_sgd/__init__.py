"""Local SGD with an outer optimizer: DiLoCo, Streaming DiLoCo, SparseLoCo and EDiT, per worker on a named axis.

Every worker runs an optax ``inner`` optimizer on its own data. Every H steps it forms the pseudo-gradient
(outer gradient) Delta_i = theta_anchor - theta_i, the workers reduce it across ``axis_name``, and an ``outer``
optax optimizer moves the anchor (the last global parameters) by the reduced pseudo-gradient::

    theta_i <- InnerOpt(theta_i, grad_i)                            every step
    Delta   =  Reduce_i(theta_anchor - theta_i)                      every H steps
    theta_anchor <- OuterOpt(theta_anchor, Delta);  theta_i <- theta_anchor

Written as optax transforms for one worker: ``update`` returns the inner update between syncs and
``new_anchor - params`` at a sync (DiLoCo's convention in torchft), so the caller's ``optax.apply_updates``
lands every worker on the new global parameters. Run them with :func:`decentral.axis.run` (vmap, shard_map or
pmap); ``axis_name=None`` runs a single worker (no collectives).

- :func:`diloco` (arXiv 2311.08105; :mod:`~decentral.local_sgd.core`): the mean of the pseudo-gradients
  (optionally compressed by any :mod:`decentral.compression` compressor and averaged in float32); outer Nesterov
  SGD (0.7, 0.9). :func:`local_sgd` is the shared core with a pluggable :class:`Reducer`.
- :func:`streaming_diloco` (arXiv 2501.18512; :mod:`~decentral.local_sgd.streaming`): P fragments synced in
  turn, one every H/P steps; the outer gradient of a fragment is all-reduced ``overlap`` (tau) steps before it is
  applied, local and global values are mixed with ``mixing`` (alpha), and outer gradients travel in FP4 E3M0 (or
  int8) and are averaged in float32.
- :func:`sparseloco` (arXiv 2508.15706; :mod:`~decentral.local_sgd.sparse`): the pseudo-gradient goes into an
  error-feedback buffer decayed by beta, whose chunk-wise top-k entries are sent with 2-bit values; the outer
  step is plain SGD on their mean.
- :func:`edit` (arXiv 2412.07210; :mod:`~decentral.local_sgd.penalty`): the pseudo-gradients go through anomaly
  elimination, norm-weighted averaging and clipping; :func:`run_a_edit` (:mod:`~decentral.local_sgd.async_edit`)
  is its asynchronous, time-triggered variant on the event simulator of :mod:`decentral.sim`.

Every state carries a :class:`decentral.ledger.CommStats` (``comm``): the exact bytes this worker sent in the
latest step, in the encoding used (:func:`sync_bytes`, :func:`streaming_step_bytes`).
"""

from decentral.local_sgd import async_edit, core, penalty, sparse, streaming
from decentral.local_sgd.async_edit import AEDiTSync, run_a_edit
from decentral.local_sgd.core import (LocalSGDState, Reducer, accumulation_dtype, default_outer, diloco, local_sgd,
                                      mean_reducer, sync_bytes)
from decentral.local_sgd.penalty import (EDIT_OUTER_MOMENTUM, EWMAState, PenaltyConfig, edit, ewma_init,
                                         ewma_is_outlier, ewma_update, ewma_z_score, penalized_reduce, penalty_bytes,
                                         penalty_reducer)
from decentral.local_sgd.sparse import error_feedback_reducer, sparseloco, sparseloco_compressor
from decentral.local_sgd.streaming import (StreamingDiLoCoState, balanced_fragments, streaming_diloco,
                                           streaming_step_bytes, strided_fragments)

__all__ = ['async_edit', 'core', 'penalty', 'sparse', 'streaming', 'AEDiTSync', 'run_a_edit', 'LocalSGDState',
           'Reducer', 'accumulation_dtype', 'default_outer', 'diloco', 'local_sgd', 'mean_reducer', 'sync_bytes',
           'EDIT_OUTER_MOMENTUM', 'EWMAState', 'PenaltyConfig', 'edit', 'ewma_init', 'ewma_is_outlier',
           'ewma_update', 'ewma_z_score', 'penalized_reduce', 'penalty_bytes', 'penalty_reducer',
           'error_feedback_reducer', 'sparseloco', 'sparseloco_compressor', 'StreamingDiLoCoState',
           'balanced_fragments', 'streaming_diloco', 'streaming_step_bytes', 'strided_fragments']
