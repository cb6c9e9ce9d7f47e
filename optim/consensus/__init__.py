"""Consensus-based optimization: a particle method on a named axis, and its driver over vmap or devices.

CBO is not an optax ``GradientTransformation``: its state is a swarm, its step evaluates the objective at every
particle and needs no gradient, and the particles meet through collectives. It has its own small API instead:

* :func:`optim.cbo` -> ``ParticleDynamics(init, step)``, written once per particle (:mod:`.dynamics`);
* :func:`optim.consensus_point`, the softmax-weighted mean over the particle axis;
* :func:`optim.run_ensemble`, M runs of N particles under ``vmap`` or ``shard_map`` (:mod:`.ensemble`).
"""

from optim.consensus.dynamics import CBOInfo, CBOState, ParticleDynamics, cbo, consensus_point, particle_index
from optim.consensus.ensemble import EnsembleRun, run_ensemble

__all__ = ['CBOInfo', 'CBOState', 'ParticleDynamics', 'cbo', 'consensus_point', 'particle_index', 'EnsembleRun',
           'run_ensemble']
