"""Sharpness-aware training as loss terms: SAF's trajectory loss and MESA's EMA-teacher loss (arXiv 2205.14083).

Both are loss terms with a state of their own, not optimizers: a :class:`~optim.sharpness.trajectory.TrajectoryLoss`
is ``init`` / ``loss`` / ``update``, added to the training loss of any model and optimized by any optax optimizer.

* :mod:`optim.sharpness.trajectory`: the tempered KL to past outputs, the epoch window, the common type and
  ``regularize`` (a base loss plus a trajectory loss, as one function of the parameters);
* :mod:`optim.sharpness.saf`: ``optim.saf``, a per-example memory of the logits of the last epochs;
* :mod:`optim.sharpness.mesa`: ``optim.mesa``, an EMA of the parameters (``optax.ema``) as the teacher.
"""

from optim.sharpness import mesa, saf, trajectory

__all__ = ['mesa', 'saf', 'trajectory']
