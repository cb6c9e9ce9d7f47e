"""Byzantine robustness: aggregation rules, pre-aggregations, attacks, and the transform that applies a rule.

- :mod:`decentral.robust.aggregation`: the rule contract, :class:`StatefulRule`, :func:`mean` and
  :func:`aggregate` (a rule as an optax transform across the worker axis);
- the rules by family: :mod:`~decentral.robust.order_statistics` (median, trimmed mean),
  :mod:`~decentral.robust.distance` (Krum, Multi-Krum, nearest-neighbour averaging),
  :mod:`~decentral.robust.weiszfeld` (geometric median), :mod:`~decentral.robust.cclip` (centered clipping),
  :mod:`~decentral.robust.flag` (Flag Aggregator), :mod:`~decentral.robust.similarity` (multi-metrics,
  SybilWall-style FoolsGold weighting);
- :mod:`decentral.robust.preaggregation`: NNM, bucketing, ARC, static clipping, composed with any rule;
- :mod:`decentral.robust.attacks`: what faulty workers send, and :func:`byzantine`, the transform that sends it.

Rules, pre-aggregations and attacks share the stacked-array helpers of :mod:`decentral.stacked`; the passes over
the stack that XLA:CPU runs near memory bandwidth (fused sums of rows, the one-pass Gram statistics of the distance
rules) are in :mod:`decentral.robust.passes`. The rules and attacks by name are in :mod:`decentral.registry`.
"""

from decentral.robust import (aggregation, attacks, cclip, distance, flag, order_statistics, passes, preaggregation,
                              similarity, weiszfeld)
from decentral.robust.aggregation import AggregateState, Rule, StatefulRule, aggregate, mean, one_round
from decentral.robust.attacks import (a_little_is_enough, byzantine, fall_of_empires, flip_labels, gaussian,
                                      honest_mean, honest_std, infinite, inject, inner_product_manipulation,
                                      label_flipping, line_maximize, mimic, not_a_number, optimal_a_little_is_enough,
                                      optimal_inner_product_manipulation, replace_faulty, sign_flipping, strongest)
from decentral.robust.cclip import centered_clipping
from decentral.robust.distance import KRUM_CONVENTIONS, krum, krum_neighbours, multi_krum, nearest_neighbour_average
from decentral.robust.flag import flag_aggregator
from decentral.robust.order_statistics import median, trimmed_mean
from decentral.robust.preaggregation import (arc, arc_then, bucketing, bucketing_then, clipping, nnm, nnm_then,
                                             preaggregated)
from decentral.robust.similarity import foolsgold_weights, multi_metrics, sybilwall
from decentral.robust.weiszfeld import geometric_median

__all__ = ['aggregation', 'attacks', 'cclip', 'distance', 'flag', 'order_statistics', 'passes', 'preaggregation',
           'similarity', 'weiszfeld', 'AggregateState', 'Rule', 'StatefulRule', 'aggregate', 'mean', 'one_round',
           'a_little_is_enough', 'byzantine', 'fall_of_empires', 'flip_labels', 'gaussian', 'honest_mean',
           'honest_std', 'infinite', 'inject', 'inner_product_manipulation', 'label_flipping', 'line_maximize',
           'mimic', 'not_a_number', 'optimal_a_little_is_enough', 'optimal_inner_product_manipulation',
           'replace_faulty', 'sign_flipping', 'strongest', 'centered_clipping', 'KRUM_CONVENTIONS', 'krum',
           'krum_neighbours', 'multi_krum', 'nearest_neighbour_average', 'flag_aggregator', 'median',
           'trimmed_mean', 'arc', 'arc_then', 'bucketing', 'bucketing_then', 'clipping', 'nnm', 'nnm_then',
           'preaggregated', 'foolsgold_weights', 'multi_metrics', 'sybilwall', 'geometric_median']
