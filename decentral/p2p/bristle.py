"""Bristle-style integration of received output layers: distance prioritising, then class-wise filtering.

Bristle (Verbraeken, de Vos and Pouwelse, arXiv 2110.11006) freezes a transferred feature extractor, so peers only
train and exchange the output layer (a linear head on fixed features), and integrates what it receives in two
stages, as the paper describes them:

1. a distance-based prioritiser: the received heads are ranked by their distance to the peer's own, with an
   explore-exploit trade-off (the nearest ones, plus some others drawn at random);
2. a performance-based integrator: each class of each received head is integrated separately, according to its
   performance on a small i.i.d. test set held by the peer.

The paper's exact scores, thresholds and weights were not available to us; this module fixes them as follows (each
one argument away). Distance: Euclidean on the whole head. Selection: the ``exploit`` nearest plus ``explore``
drawn uniformly from the rest. The performance of class c of head j is measured on the peer's test set with the
peer's own head whose class-c weights (kernel column and bias) are replaced by head j's: the accuracy and the
recall of class c. The class is accepted when it recognises some class-c samples and lowers neither the accuracy
nor the class-c recall by more than ``tolerance``; class c of the result is the recall-weighted mean of the peer's
own class-c weights and the accepted ones (:func:`bristle_integrate`). A Byzantine class (scaled, flipped or
noisy weights) wrecks the accuracy or recognises nothing and is dropped class by class, while an honest
neighbour's class that the peer never saw (non-i.i.d. classes) is kept and outweighs the peer's own. The
assumption to state with any result: every peer holds a few test samples of every class.

>>> import jax, jax.numpy as jnp
>>> x = jnp.array([[1., 0.], [0., 1.], [1., 0.1], [0.1, 1.]]); y = jnp.array([0, 1, 0, 1])
>>> own = {'kernel': jnp.array([[1., 0.], [0., .2]]), 'bias': jnp.zeros(2)}        # weak on class 1
>>> good = {'kernel': jnp.array([[0., 0.], [0., 1.]]), 'bias': jnp.zeros(2)}      # knows class 1 only
>>> bad = {'kernel': jnp.array([[0., 0.], [0., 0.]]), 'bias': jnp.array([0., 9.])}  # always says 1
>>> received = jax.tree.map(lambda a, b: jnp.stack([a, b]), good, bad)
>>> out = bristle_integrate(own, received, x, y, exploit=2)
>>> out['kernel'].round(2).tolist(), out['bias'].tolist()  # good's class 1 averaged in, the rest dropped
([[1.0, 0.0], [0.0, 0.6]], [0.0, 0.0])
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from decentral import checks

PyTree = Any


def head_logits(head: PyTree, features: jax.Array) -> jax.Array:
  """``features @ kernel + bias``: (v, C) logits of a linear head ``{'kernel': (d, C), 'bias': (C,)}``."""
  return features @ head['kernel'] + head['bias']


def prioritise(own: PyTree, received: PyTree, *, exploit: int, explore: int = 0,
               key: jax.Array | None = None) -> jax.Array:
  """The selection mask (m,) of the received heads: the ``exploit`` nearest to ``own`` (Euclidean distance over
  the whole head; ties: lowest index) and ``explore`` more drawn uniformly at random from the others."""
  dist = sum(jnp.sum((r - o[None]).reshape(r.shape[0], -1) ** 2, axis=1)
             for r, o in zip(jax.tree.leaves(received), jax.tree.leaves(own)))
  dist = jnp.where(jnp.isfinite(dist), dist, jnp.inf)
  m = dist.shape[0]
  rank = jnp.argsort(jnp.argsort(dist, stable=True), stable=True)
  chosen = rank < exploit
  if explore:
    if key is None:
      raise ValueError('prioritise: explore > 0 needs a key')
    noise = jnp.where(chosen, jnp.inf, jax.random.uniform(key, (m,)))
    chosen = chosen | (jnp.argsort(jnp.argsort(noise, stable=True), stable=True) < explore)
  return chosen


def class_scores(own: PyTree, received: PyTree, features: jax.Array, labels: jax.Array
                 ) -> tuple[jax.Array, jax.Array]:
  """Accuracy and class-c recall, each (m, C), on (features, labels) of ``own`` with class c's weights replaced by
  received head j's; a non-finite class wins every vote (and so scores low)."""
  base = head_logits(own, features)                                              # (v, C)
  theirs = jax.vmap(head_logits, in_axes=(0, None))(received, features)          # (m, v, C)
  num_classes = base.shape[1]
  col = jnp.arange(num_classes)
  swapped = jnp.where(col[None, :, None, None] == col[None, None, None, :],   # (m, c, v, k): column c from j
                      jnp.moveaxis(theirs, 2, 1)[:, :, :, None], base[None, None])
  swapped = jnp.where(jnp.isfinite(swapped), swapped, jnp.inf)
  right = jnp.argmax(swapped, axis=-1) == labels[None, None, :]                  # (m, c, v)
  of_c = labels[None, :] == col[:, None]                                         # (c, v)
  recall = jnp.sum(right & of_c[None], -1) / jnp.maximum(jnp.sum(of_c, -1), 1)
  return jnp.mean(right, axis=-1), recall


def own_scores(own: PyTree, features: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The peer's own accuracy (scalar) and per-class recall (C,) on its test set."""
  right = jnp.argmax(head_logits(own, features), -1) == labels
  of_c = labels[None, :] == jnp.arange(own['bias'].shape[0])[:, None]
  return jnp.mean(right), jnp.sum(right[None] & of_c, -1) / jnp.maximum(jnp.sum(of_c, -1), 1)


def bristle_integrate(own: PyTree, received: PyTree, features: jax.Array, labels: jax.Array, *, exploit: int,
                      explore: int = 0, tolerance: float = 0.0, key: jax.Array | None = None) -> PyTree:
  r"""The peer's new head from its own and the received ones (see the module docstring for the conventions).

  With :math:`a_{jc}` and :math:`r_{jc}` the accuracy and the class-c recall of the peer's head with class c taken
  from :math:`H_j` (:func:`class_scores`), :math:`a, r_c` the peer's own (:func:`own_scores`), and S the
  prioritised heads:

  .. math:: A_c = \{j \in S : a_{jc} \ge a - \tau,\ r_{jc} \ge r_c - \tau,\ r_{jc} > 0\}, \qquad
     H_{\cdot c} \leftarrow \frac{r_c H_{\cdot c} + \sum_{j \in A_c} r_{jc} (H_j)_{\cdot c}}
     {r_c + \sum_{j \in A_c} r_{jc}}

  (the peer's own class kept alone when every weight is 0). A class the peer never learnt (:math:`r_c = 0`) is
  replaced by the received versions that recognise it; a class that breaks the others' predictions, or recognises
  nothing, is left out.

  Args:
    own: the peer's head ``{'kernel': (d, C), 'bias': (C,)}``.
    received: the m received heads, stacked on a leading axis.
    features, labels: the peer's small i.i.d. test set (frozen features (v, d), int labels (v,)).
    exploit, explore: how many nearest and how many random heads the prioritiser keeps.
    tolerance: tau, the accuracy and recall a class may cost and still be accepted.
    key: for the random exploration.

  Returns:
    The integrated head.
  """
  checks.non_negative_int(exploit, 'bristle_integrate: exploit')
  checks.non_negative_int(explore, 'bristle_integrate: explore')
  chosen = prioritise(own, received, exploit=exploit, explore=explore, key=key)
  own_acc, own_recall = own_scores(own, features, labels)
  acc, recall = class_scores(own, received, features, labels)
  accept = chosen[:, None] & (acc >= own_acc - tolerance) & (recall >= own_recall[None] - tolerance) & (recall > 0)
  dtype = own['kernel'].dtype
  w = jnp.where(accept, recall, 0.0).astype(dtype)                               # (m, C)
  total = own_recall.astype(dtype) + jnp.sum(w, axis=0)
  w_own = jnp.where(total > 0, own_recall.astype(dtype), 1.0)
  total = jnp.where(total > 0, total, 1.0)
  safe = jax.tree.map(lambda r: jnp.where(jnp.isfinite(r), r, 0.0), received)  # rejected rows may be inf/NaN
  kernel = (w_own * own['kernel'] + jnp.einsum('mc,mdc->dc', w, safe['kernel'])) / total
  bias = (w_own * own['bias'] + jnp.einsum('mc,mc->c', w, safe['bias'])) / total
  return {'kernel': kernel, 'bias': bias}
