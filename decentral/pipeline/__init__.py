"""Pipeline model parallelism on a named ``stage`` axis, and heterogeneous replicas on a (replica x stage) mesh.

- :mod:`~decentral.pipeline.schedule`: a microbatched GPipe schedule written once per stage (``lax.scan`` over
  the M + S - 1 ticks, ``lax.ppermute`` between stages; the backward is ``jax.grad`` of it);
- :mod:`~decentral.pipeline.links`: the inter-stage link, identity or an encode/decode pair whose backward sends
  the encoded activation gradient, with its exact bytes;
- :mod:`~decentral.pipeline.mesh`: one per-worker step run on a (replica x stage) mesh by vmap or shard_map;
- :mod:`~decentral.pipeline.heterogeneous`: full and pipelined-compressed replicas trained with SparseLoCo
  across replicas (error feedback per replica and per stage), selective or total compression;
- :mod:`~decentral.pipeline.transformer`: a small character transformer cut into S stages of equal activation shape;
- :mod:`~decentral.pipeline.subspace`: subspace-compressed links (residual writes constrained to span(U) around a
  fixed token table, so k numbers per token cross a link and the next stage rebuilds the activation exactly).
"""

from decentral.pipeline import heterogeneous, links, mesh, schedule
from decentral.pipeline.heterogeneous import ReplicaState, Replicas, heterogeneous_sparseloco
from decentral.pipeline.links import Link, compressed, identity, message_nbytes, send, send_either
from decentral.pipeline.schedule import bubble_fraction, gpipe, unsplit, value_and_grad
from decentral.pipeline import subspace, transformer
from decentral.pipeline.subspace import (anchor_embedding, constrain, constrain_stage, constrained, random_basis,
                                         subspace_constraint, subspace_link)
from decentral.pipeline.transformer import Transformer, from_stages, stage_params, to_stages

__all__ = ['heterogeneous', 'links', 'mesh', 'schedule', 'ReplicaState', 'Replicas', 'heterogeneous_sparseloco',
           'Link', 'compressed', 'identity', 'message_nbytes', 'send', 'send_either', 'bubble_fraction', 'gpipe',
           'unsplit', 'value_and_grad',
           'subspace', 'transformer', 'anchor_embedding', 'constrain', 'constrain_stage', 'constrained',
           'random_basis', 'subspace_constraint', 'subspace_link', 'Transformer', 'from_stages', 'stage_params',
           'to_stages']
