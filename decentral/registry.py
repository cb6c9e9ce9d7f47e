"""The worker-axis methods by name: aggregation rules, attacks, compressors and worker-axis transforms.

Four registries of :class:`optim.registry.Registry`, filled here, explicitly, in one place (nothing registers
itself on import), so the suites and the experiments read what exists from one file:

- :data:`rules`: ``rules.build(name, **kw)`` returns the rule exactly as :func:`decentral.aggregate` takes it:
  the function (with ``kw`` and the registered defaults bound by ``functools.partial``), or, for the entries
  tagged ``'stateful'``, the :class:`decentral.StatefulRule` the factory builds;
- :data:`attacks`: ``attacks.build(name, **kw)`` returns the attack function with ``kw`` bound;
- :data:`compressors`: ``compressors.build(name, **kw)`` calls the compressor factory;
- :data:`federated`: the federated algorithms of the round engine (:class:`decentral.federated.Federated`);
  ``federated.build(name, **kw)`` returns a :class:`decentral.federated.Algorithm`;
- :data:`transforms`: every distributed method as a worker-axis transform, its factory registered with defaults
  for a small problem of 8 workers; ``transforms.build(name, axis_name=...)`` gives the transform on that axis, and
  its tags say how ``update`` is called (listed with the entries below).

>>> from decentral import registry
>>> registry.rules.build('krum')
functools.partial(<function krum at ...>, convention='byzfl')
>>> registry.compressors.build('top_k', k=2).name
'top_k'
>>> 'a_little_is_enough' in registry.attacks
True
>>> tx = registry.transforms.build('diloco', axis_name='workers', sync_every=4)
>>> sorted(registry.transforms.get('diloco').tags)
['needs_params']
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable

import jax
import optax

from decentral.compression import (deep_gradient, feedback, fedzip_codec, poisson_binomial, privacy, quantizers,
                                  sketches, sparsifiers)
from decentral.federated import (anchor_sampling, fedopt, gradient_differences, proximal, stale_updates,
                                 zeroth_order)
from decentral.federated import curricula, fedspeed, fedsvd
from decentral.local_sgd import core as local_sgd_core
from decentral.local_sgd import penalty, sparse, streaming
from decentral.p2p import bristle, dimat, disruption, flatness, merging, sybil_gossip, variance_correction
from decentral.p2p import sgd as p2p_sgd
from decentral.p2p import topology
from decentral.robust import (aggregation, cclip, distance, flag, order_statistics, preaggregation, similarity,
                              weiszfeld)
from decentral.robust import attacks as attack_fns
from optim.privacy import microbatch
from optim.registry import Registry

# Arguments every rule and attack receives at call time, so never bound when building.
CALL_ARGS = ('stacked', 'honest', 'f', 'key')


def bind(fn: Callable[..., Any]) -> Callable[..., Any]:
  """A factory for a stateless rule or an attack: ``bind(fn)(**kw)`` is ``fn`` with ``kw`` bound.

  Returns ``fn`` itself when nothing is bound. The factory's signature lists the keyword arguments of ``fn``
  that can be bound (not ``f`` and ``key``, which ``fn`` receives at each call), so the registry rejects an
  unknown one with a message naming what ``fn`` takes.
  """

  def build(**kwargs):
    return functools.partial(fn, **kwargs) if kwargs else fn

  params = [p.replace(kind=p.KEYWORD_ONLY) for p in inspect.signature(fn).parameters.values()
            if p.name not in CALL_ARGS and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
  build.__signature__ = inspect.Signature(params)
  build.__name__ = build.__qualname__ = fn.__name__
  build.__doc__ = fn.__doc__
  return build


def _nnm_trimmed_mean(stacked, *, f=0, key=None):
  """Nearest-neighbour mixing, then the trimmed mean. A non-finite row never enters a finite row's
  neighbourhood and its own mixed row is NaN, which the trimmed mean trims while there are at most f of them."""
  return preaggregation.nnm_then(order_statistics.trimmed_mean)(stacked, f=f, key=key)


def _bucketing_geometric_median(stacked, *, f=0, key=None, s=2):
  """Bucketing (buckets of s), then the geometric median. A bucket holding a non-finite row is NaN, and the
  geometric median gives NaN rows weight 0."""
  return preaggregation.bucketing_then(weiszfeld.geometric_median, s=s)(stacked, f=f, key=key)


def _arc_multi_krum(stacked, *, f=0, key=None):
  """Adaptive robust clipping, then Multi-Krum. With at most f non-finite rows, ARC turns each into the zero
  vector (infinite norm, always clipped), so Multi-Krum sees finite rows only."""
  return preaggregation.arc_then(distance.multi_krum)(stacked, f=f, key=key)


def get_rule(name: str, **overrides: Any):
  """The aggregation rule registered under ``name``, built with ``overrides`` (``rules.build``)."""
  return rules.build(name, **overrides)


def get_attack(name: str, **overrides: Any):
  """The attack registered under ``name`` with ``overrides`` bound (``attacks.build``)."""
  return attacks.build(name, **overrides)


rules: Registry = Registry('aggregation rule')
attacks: Registry = Registry('attack')
compressors: Registry = Registry('compressor')
transforms: Registry = Registry('worker-axis transform')
federated: Registry = Registry('federated algorithm')

# Aggregation rules, with the defaults the conformance suite and the experiments use (ByzFL's where it has one).
rules.register('mean', bind(aggregation.mean))
rules.register('median', bind(order_statistics.median))
rules.register('trimmed_mean', bind(order_statistics.trimmed_mean))
rules.register('krum', bind(distance.krum), convention='byzfl')
rules.register('multi_krum', bind(distance.multi_krum), convention='byzfl')
rules.register('geometric_median', bind(weiszfeld.geometric_median), nu=0.1, iters=3, init='zero')
rules.register('nearest_neighbour_average', bind(distance.nearest_neighbour_average))
rules.register('centered_clipping', cclip.centered_clipping, tau=100.0, iters=1, tags=('stateful',))
rules.register('flag_aggregator', bind(flag.flag_aggregator), r=1, iters=1)
rules.register('multi_metrics', bind(similarity.multi_metrics), p=0.3)
rules.register('sybilwall', similarity.sybilwall, tags=('stateful',))
# A pre-aggregation composed with a rule is a rule.
rules.register('nnm+trimmed_mean', bind(_nnm_trimmed_mean))
rules.register('bucketing+geometric_median', bind(_bucketing_geometric_median), s=2)
rules.register('arc+multi_krum', bind(_arc_multi_krum))

# Attacks on the honest vectors (label flipping acts on the data: its attack returns None).
attacks.register('sign_flipping', bind(attack_fns.sign_flipping))
attacks.register('inner_product_manipulation', bind(attack_fns.inner_product_manipulation))
attacks.register('a_little_is_enough', bind(attack_fns.a_little_is_enough))
attacks.register('fall_of_empires', bind(attack_fns.fall_of_empires))
attacks.register('mimic', bind(attack_fns.mimic))
attacks.register('gaussian', bind(attack_fns.gaussian))
attacks.register('infinite', bind(attack_fns.infinite))
attacks.register('not_a_number', bind(attack_fns.not_a_number))
attacks.register('label_flipping', bind(attack_fns.label_flipping))

# Compressors of one array (decentral.compression.wire.Compressor). Tag 'measured': the encoded size depends on the
# data (FedZip's Huffman and position codes), so ``nbytes`` is an upper bound and ``len(encode(...))`` what is sent.
compressors.register('identity', sparsifiers.identity)
compressors.register('top_k', sparsifiers.top_k)
compressors.register('random_k', sparsifiers.random_k)
compressors.register('sign', quantizers.sign)
compressors.register('qsgd', quantizers.qsgd)
compressors.register('natural', quantizers.natural)
compressors.register('int8', quantizers.int8)
compressors.register('fp4_e3m0', quantizers.fp4_e3m0)
compressors.register('low_rank', sketches.low_rank)
compressors.register('count_sketch', sketches.count_sketch)
compressors.register('fedzip', fedzip_codec.fedzip, tags=('measured',))
compressors.register('rqm', privacy.rqm)
compressors.register('pbm', poisson_binomial.pbm, c=1.0)
compressors.register('sparseloco', sparse.sparseloco_compressor)

# Worker-axis transforms: every distributed method, its factory registered with defaults sized for the
# conformance suite's problem (8 workers: a ring of 8, top-k at ratio 0.25, a sync every 2 steps); the worker axis
# is given when building, ``transforms.build('ef21', axis_name='workers')``. Tags say how a method is called:
#   'needs_params'   update(updates, state, params): it moves each worker's parameters (local SGD, gossip, JOB);
#   'direction'      it returns a direction in gradient units: chain a learning rate after it;
#   'shared_update'  every worker receives the same update, so workers that start equal stay equal;
#   'stateless'      no state shaped like the parameters (``aggregate`` with a stateless rule), so an updates tree
#                    of another structure cannot be told from the right one;
#   'each_rule'      it takes an aggregation rule (``rule=``): the suite runs it with every registered rule.
# A-EDiT (:func:`decentral.run_a_edit`) is not here: it is a host-driven runner of jitted per-event steps on the
# event simulator (workers step asynchronously), not a lock-step transform.


def _loss_oracle(loss_fn):
  """Just One Byte's extra ``update`` argument: this worker's loss on its batch."""
  return {'loss_fn': loss_fn}


_TEST_WORKERS = 8
_INNER = optax.sgd(0.05, momentum=0.9)  # the inner optimizer of the local-SGD methods: per-worker state

# EF with the sign compressor is EF-signSGD (Karimireddy et al.); EF21 with top-k as in its paper.
transforms.register('error_feedback', feedback.error_feedback, compressor=quantizers.sign(),
                    tags=('direction', 'shared_update'))
transforms.register('ef21', feedback.ef21, compressor=sparsifiers.top_k(ratio=0.25),
                    tags=('direction', 'shared_update'))
# A randomised compressor on the raveled tree: per-worker keys must agree across backends.
transforms.register('ef21_w', feedback.ef21_w, compressor=quantizers.qsgd(2), flat=True,
                    smoothness=tuple(float(i) for i in range(1, _TEST_WORKERS + 1)),
                    tags=('direction', 'shared_update'))
# Density 0.1 after a warm-up epoch at 0.25: k changes between stages; local clipping on.
transforms.register('dgc', deep_gradient.dgc, learning_rate=0.1, density=0.1, momentum=0.9, clip_norm=1.0,
                    warmup_epochs=1, steps_per_epoch=2, tags=('shared_update',))
transforms.register('diloco', local_sgd_core.diloco, inner=_INNER, sync_every=2, tags=('needs_params',))
transforms.register('streaming_diloco', streaming.streaming_diloco, inner=_INNER, sync_every=4, num_fragments=2,
                    overlap=1, mixing=0.5, tags=('needs_params',))
transforms.register('sparseloco', sparse.sparseloco, inner=_INNER, sync_every=2, chunk=4, k=2,
                    tags=('needs_params',))
transforms.register('edit', penalty.edit, inner=_INNER, sync_every=2, warmup=2, tags=('needs_params',))
transforms.register('dsgd', p2p_sgd.dsgd, learning_rate=0.1, topology=topology.ring(_TEST_WORKERS), momentum=0.9,
                    tags=('needs_params',))
# DFedSAM-MGS: 2 local SAM steps, then 2 gossip steps; the single merge: gossip every 2 steps, merge at step 3;
# variance correction on a ring; node 3 and link (0, 1) lost from round 2 on a Barabasi-Albert graph.
transforms.register('dfedsam', flatness.dfedsam, learning_rate=0.1, topology=topology.ring(_TEST_WORKERS), rho=0.05,
                    local_steps=2, gossip_steps=2, extra_args=_loss_oracle, tags=('needs_params',))
transforms.register('single_merge_dsgd', merging.single_merge_dsgd, learning_rate=0.1,
                    topology=topology.ring(_TEST_WORKERS), merge_at=3, gossip_every=2, tags=('needs_params',))
transforms.register('variance_corrected_dsgd', variance_correction.variance_corrected_dsgd, learning_rate=0.1,
                    topology=topology.ring(_TEST_WORKERS), min_ndim=1, tags=('needs_params',))
transforms.register('disrupted_dsgd', disruption.disrupted_dsgd, learning_rate=0.1,
                    topology=topology.barabasi_albert(_TEST_WORKERS, 2), fail_round=2, failed_nodes=(3,),
                    failed_links=((0, 1),), tags=('needs_params',))
# DIMAT reads the suite's tree as one hidden layer relu(x @ dense.w + dense.b) of 3 units, matched on a batch of 16
# inputs, merging every 2 steps on a ring; Bristle's head is (dense.w, dense.b) (4 features, 3 classes), its test set
# 24 labelled samples, the last worker sending ALIE; SybilWall forwards with probability 0.5 on a ring.
transforms.register('dimat_dsgd', dimat.dimat_dsgd, learning_rate=0.1, topology=topology.ring(_TEST_WORKERS),
                    spec={'dense': {'w': (None, 'hidden'), 'b': ('hidden',)}, 'scale': ()},
                    activations=dimat.dense_activations(('dense', 'w'), ('dense', 'b')), merge_every=2,
                    extra_args=lambda key: {'batch': jax.random.normal(key, (16, 4))}, tags=('needs_params',))
transforms.register('bristle_dsgd', bristle.bristle_dsgd, learning_rate=0.1, exploit=3, explore=1, tolerance=0.05,
                    kernel=('dense', 'w'), bias=('dense', 'b'), f=1, attack=attack_fns.a_little_is_enough,
                    extra_args=lambda key: {'features': jax.random.normal(key, (24, 4)),
                                            'labels': jax.random.randint(key, (24,), 0, 3)}, tags=('needs_params',))
transforms.register('sybilwall_dsgd', sybil_gossip.sybilwall_dsgd, learning_rate=0.1,
                    topology=topology.ring(_TEST_WORKERS), forward_prob=0.5, tags=('needs_params',))
# Robust D-SGD on the complete graph (all_gather), MoNNA on a ring (ppermute); the last worker attacks both.
transforms.register('robust_dsgd', p2p_sgd.robust_dsgd, learning_rate=0.1, rule=order_statistics.trimmed_mean, f=1,
                    momentum=0.9, attack=attack_fns.a_little_is_enough, tags=('needs_params',))
transforms.register('monna', p2p_sgd.monna, learning_rate=0.1, f=1, beta=0.9, attack=attack_fns.a_little_is_enough,
                    topology=topology.ring(_TEST_WORKERS), tags=('needs_params',))
transforms.register('just_one_byte', zeroth_order.just_one_byte, learning_rate=0.05, scale=0.05,
                    extra_args=_loss_oracle, tags=('needs_params', 'shared_update'))
transforms.register('aggregate', aggregation.aggregate, rule=rules.build('trimmed_mean'), f=1,
                    tags=('direction', 'shared_update', 'stateless', 'each_rule'))
transforms.register('byzantine', attack_fns.byzantine, attack=attack_fns.a_little_is_enough, f=1,
                    tags=('direction', 'stateless'))
# DIFF2 fed each worker's loss as its one example (the suite has no per-example losses); a restart every 2 rounds.
transforms.register('diff2', microbatch.microbatched(gradient_differences.diff2), learning_rate=0.1, restart_every=2,
                    l2_norm_clip=10.0, diff_clip=1.0, noise_multiplier=0.01, diff_noise_multiplier=0.01,
                    extra_args=gradient_differences.single_example_oracle, tags=('needs_params', 'shared_update'))

# Federated algorithms (decentral.federated): each factory returns an Algorithm of hooks for the round engine, with
# its server optimizer. The conformance suite runs one round of each under vmap, shard_map and pmap.
federated.register('fedavg', fedopt.fedavg)
federated.register('fedavgm', fedopt.fedavgm, learning_rate=1.0, momentum=0.9)
federated.register('fedadam', fedopt.fedadam, learning_rate=0.01)
federated.register('fedyogi', fedopt.fedyogi, learning_rate=0.01)
federated.register('fedprox', proximal.fedprox, mu=0.1)
federated.register('fedstale', stale_updates.fedstale, beta=0.5)
federated.register('fedvarp', stale_updates.fedvarp)
federated.register('fedamd', anchor_sampling.fedamd, anchor_probability=0.3)
federated.register('fedspeed', fedspeed.fedspeed_algorithm, lam=1.0, alpha=0.5, rho=0.05)
# The suite's model has no LoRA adapters: FedSVD there is its DP-SGD client on every leaf (train_others); the
# re-factorisation of LoRA nodes is tested in tests/decentral/federated/test_fedsvd.py.
federated.register('fedsvd', fedsvd.fedsvd_algorithm, l2_norm_clip=1.0, noise_multiplier=0.5, sampling_rate=0.5,
                   train_others=True)
federated.register('random_curriculum', curricula.curriculum_algorithm, kind='random', total_rounds=4, a=0.5, b=0.5)
