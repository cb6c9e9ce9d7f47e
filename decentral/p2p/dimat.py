"""DIMAT merging: align each neighbour's MLP to one's own by activation matching, then mix with the gossip weights.

DIMAT (Saadati et al., CVPR 2024, arXiv 2404.08079) alternates local training with a merge in which every agent
first permutes the hidden units of each neighbour's model to match its own (activation matching: one linear
assignment per hidden layer on the cross-correlation of the two models' activations, solved by
``scipy.optimize.linear_sum_assignment``) and then mixes the aligned models with its row of the mixing matrix:

.. math:: \\theta_i \\leftarrow \\sum_j W_{ij}\\, \\pi_{ij}(\\theta_j), \\qquad \\pi_{ii} = \\mathrm{id}.

A permutation of hidden units is an exact symmetry of an MLP with an elementwise activation (:func:`permute_mlp`),
so the aligned neighbour computes the same function as the one it received; plain gossip (D-SGD's merge) is the
same formula with every :math:`\\pi_{ij}` the identity.

Models are MLPs given as a list of layers ``{'kernel': (d_in, d_out), 'bias': (d_out,)}`` (flax ``nn.Dense``
naming, ``x @ kernel + bias``), the activation after every layer but the last. The assignment runs on the host
(numpy/scipy), so the merge is a host-side step between jitted training phases, not a worker-axis transform.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> model = [{'kernel': rng.normal(size=(3, 4)), 'bias': rng.normal(size=4)},
...          {'kernel': rng.normal(size=(4, 2)), 'bias': rng.normal(size=2)}]
>>> shuffled = permute_mlp(model, [np.array([2, 0, 3, 1])])
>>> x = rng.normal(size=(50, 3))
>>> bool(np.allclose(mlp_apply(model, x), mlp_apply(shuffled, x)))
True
>>> aligned = align_mlp(model, shuffled, x)  # recovers the original unit order
>>> bool(np.allclose(aligned[0]['kernel'], model[0]['kernel']))
True
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

Layer = dict
Activation = Callable[[np.ndarray], np.ndarray]


def relu(x: np.ndarray) -> np.ndarray:
  return np.maximum(x, 0.0)


def mlp_apply(layers: Sequence[Layer], x: np.ndarray, activation: Activation = relu) -> np.ndarray:
  """The MLP's output: ``activation(x @ kernel + bias)`` for every layer but the last, which is affine."""
  return hidden_activations(layers, x, activation)[-1]


def hidden_activations(layers: Sequence[Layer], x: np.ndarray, activation: Activation = relu) -> list[np.ndarray]:
  """The post-activation outputs of every hidden layer, then the output logits (a list of L arrays)."""
  outs, h = [], np.asarray(x, np.float64).reshape(len(x), -1)
  for k, layer in enumerate(layers):
    h = h @ np.asarray(layer['kernel'], np.float64) + np.asarray(layer['bias'], np.float64)
    if k < len(layers) - 1:
      h = activation(h)
    outs.append(h)
  return outs


def permute_mlp(layers: Sequence[Layer], perms: Sequence[np.ndarray]) -> list[Layer]:
  """The MLP with hidden layer k's units reordered by ``perms[k]`` (new unit u is old unit ``perms[k][u]``).

  Layer k's kernel columns and bias, and layer k+1's kernel rows, move together, so the output is unchanged for
  any elementwise activation. ``perms`` has one permutation per hidden layer (L - 1 of them).
  """
  if len(perms) != len(layers) - 1:
    raise ValueError(f'permute_mlp: need one permutation per hidden layer ({len(layers) - 1}), got {len(perms)}')
  out = [{'kernel': np.asarray(layer['kernel']), 'bias': np.asarray(layer['bias'])} for layer in layers]
  for k, perm in enumerate(perms):
    perm = np.asarray(perm)
    if sorted(perm.tolist()) != list(range(out[k]['bias'].shape[0])):
      raise ValueError(f'permute_mlp: perms[{k}] is not a permutation of the {out[k]["bias"].shape[0]} units')
    out[k] = {'kernel': out[k]['kernel'][:, perm], 'bias': out[k]['bias'][perm]}
    out[k + 1] = {'kernel': out[k + 1]['kernel'][perm, :], 'bias': out[k + 1]['bias']}
  return out


def match_units(z_ref: np.ndarray, z_other: np.ndarray, similarity: str = 'correlation') -> np.ndarray:
  r"""The permutation of ``z_other``'s units that best matches ``z_ref``'s: one linear assignment.

  Maximises :math:`\sum_u S_{u, \pi(u)}` over permutations, S the (units x units) similarity of the two
  activation matrices (batch x units): Pearson correlation (``'correlation'``, ZipIt's and DIMAT's activation
  matching; a constant unit gets correlation 0) or the raw inner product :math:`Z_{ref}^\top Z_{other}`
  (``'inner'``, Git Re-Basin's activation matching). Returns ``perm`` with ``z_other[:, perm]`` aligned.
  """
  a, b = np.asarray(z_ref, np.float64), np.asarray(z_other, np.float64)
  if a.shape != b.shape:
    raise ValueError(f'match_units: activations must have the same shape, got {a.shape} and {b.shape}')
  if similarity == 'correlation':
    a = a - a.mean(0)
    b = b - b.mean(0)
    norms = np.linalg.norm(a, axis=0)[:, None] * np.linalg.norm(b, axis=0)[None, :]
    sim = np.divide(a.T @ b, norms, out=np.zeros((a.shape[1], b.shape[1])), where=norms > 0)
  elif similarity == 'inner':
    sim = a.T @ b
  else:
    raise ValueError(f"match_units: similarity must be 'correlation' or 'inner', got {similarity!r}")
  rows, cols = linear_sum_assignment(sim, maximize=True)
  return cols[np.argsort(rows)]


def align_mlp(reference: Sequence[Layer], other: Sequence[Layer], x: np.ndarray, *, activation: Activation = relu,
              similarity: str = 'correlation') -> list[Layer]:
  """``other`` with every hidden layer's units permuted to match ``reference``'s activations on the batch ``x``.

  Each hidden layer is matched on the two models' own (unpermuted) activations: a permutation of earlier layers
  only reorders later inputs, so the per-layer problems are independent (Git Re-Basin's activation matching).
  """
  z_ref = hidden_activations(reference, x, activation)[:-1]
  z_other = hidden_activations(other, x, activation)[:-1]
  return permute_mlp(other, [match_units(r, o, similarity) for r, o in zip(z_ref, z_other)])


def dimat_merge(models: Sequence[Sequence[Layer]], mixing: np.ndarray, batches: np.ndarray | Sequence[np.ndarray],
                *, activation: Activation = relu, similarity: str = 'correlation', align: bool = True
                ) -> list[list[Layer]]:
  r"""One DIMAT merge for every agent: :math:`\theta_i \leftarrow \sum_j W_{ij}\,\pi_{ij}(\theta_j)`.

  Agent i aligns each neighbour's model (``mixing[i, j] > 0``) to its own with :func:`align_mlp` on its batch
  ``batches[i]`` -- its own data, so no shared data set is needed (a shared public batch is ``batches`` repeated)
  -- and takes the weighted sum. ``align=False`` is plain gossip averaging (the baseline). Follows the merge of
  the paper (arXiv 2404.08079): align every neighbour to oneself, then average with W; the paper's activation
  matching is ZipIt/Git Re-Basin's, here the correlation-matching linear assignment per layer.

  Args:
    models: n MLPs (lists of layers of the same shapes).
    mixing: (n, n) row-stochastic mixing matrix (e.g. ``decentral.ring(n).mixing``).
    batches: n input batches (one per agent), or one array (n, b, ...).
    activation: the hidden activation (elementwise).
    similarity: see :func:`match_units`.
    align: False skips the alignment (plain weighted averaging).

  Returns:
    The n merged MLPs (float64 numpy).
  """
  w = np.asarray(mixing, np.float64)
  n = len(models)
  if w.shape != (n, n):
    raise ValueError(f'dimat_merge: mixing must be ({n}, {n}) for {n} models, got {w.shape}')
  if len(batches) != n:
    raise ValueError(f'dimat_merge: need one batch per agent ({n}), got {len(batches)}')
  merged = []
  for i in range(n):
    total = None
    for j in np.flatnonzero(w[i]):
      theta = models[j] if (j == i or not align) else align_mlp(models[i], models[j], batches[i],
                                                                activation=activation, similarity=similarity)
      scaled = [{k: w[i, j] * np.asarray(v, np.float64) for k, v in layer.items()} for layer in theta]
      total = scaled if total is None else [{k: t[k] + s[k] for k in t} for t, s in zip(total, scaled)]
    merged.append(total)
  return merged
