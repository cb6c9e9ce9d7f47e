"""DIMAT merging: align each neighbour's MLP to one's own by activation matching, then mix with the gossip weights.

DIMAT (Saadati et al., CVPR 2024, arXiv 2404.08079) alternates local training with a merge in which every agent
first permutes the hidden units of each neighbour's model to match its own (activation matching: one linear
assignment per hidden layer on the cross-correlation of the two models' activations, solved by
``scipy.optimize.linear_sum_assignment``) and then mixes the aligned models with its row of the mixing matrix:

.. math:: \\theta_i \\leftarrow \\sum_j W_{ij}\\, \\pi_{ij}(\\theta_j), \\qquad \\pi_{ii} = \\mathrm{id}.

A permutation of hidden units is an exact symmetry of an MLP with an elementwise activation (:func:`permute_mlp`),
so the aligned neighbour computes the same function as the one it received; plain gossip (D-SGD's merge) is the
same formula with every :math:`\\pi_{ij}` the identity.

Two implementations of the same merge:

- on the host, for MLPs given as a list of layers ``{'kernel': (d_in, d_out), 'bias': (d_out,)}`` (flax
  ``nn.Dense`` naming, ``x @ kernel + bias``, the activation after every layer but the last): :func:`dimat_merge`
  runs every agent's merge in numpy with scipy's assignment, float64; the reference the tests hold the other to;
- on the worker axis, for any model: :func:`dimat_gossip` (the merge as an optax transform) and
  :func:`dimat_dsgd` (a local SGD step, then the merge every ``merge_every`` steps). Each worker receives its
  neighbours' models (one ``ppermute`` per neighbour on a circulant or torus graph, else an ``all_gather``),
  computes their activations and its own on its own batch, and solves each assignment inside the jitted step
  with :func:`decentral.p2p.assignment.linear_assignment` (an exact Hungarian method in JAX by default,
  ``solver='scipy'`` for a host callback). Which axes a permutation moves is a *permutation spec*: a tree shaped
  like the parameters whose leaves are tuples naming, per axis, the hidden layer that indexes it (None: not
  permuted), as in Git Re-Basin (``mlp_spec`` gives the one of the host layout).

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

from typing import Any, Callable, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from scipy.optimize import linear_sum_assignment

from decentral import axis
from decentral.p2p.assignment import SOLVERS, linear_assignment
from decentral.p2p.sgd import need_params, sgd_then
from decentral.p2p.topology import Topology, neighbours
from decentral.stacked import compute_dtype
from optim import checks as optim_checks

Layer = dict
Activation = Callable[[np.ndarray], np.ndarray]
PyTree = Any
SIMILARITIES = ('correlation', 'inner')


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


# ---------------------------------------------------------------------------------------------- on the worker axis


class DimatState(NamedTuple):
  count: jax.Array  # local steps taken


def mlp_spec(num_layers: int) -> list[dict]:
  """The permutation spec of an MLP of ``num_layers`` layers in this module's layout: hidden layer k's units,
  labelled ``'hidden_k'``, index layer k's kernel columns and bias and layer k+1's kernel rows."""
  spec = []
  for k in range(num_layers):
    into = f'hidden_{k}' if k < num_layers - 1 else None
    spec.append({'kernel': (f'hidden_{k - 1}' if k else None, into), 'bias': (into,)})
  return spec


def mlp_activations(activation: Callable[[jax.Array], jax.Array] = jax.nn.relu
                    ) -> Callable[[Sequence[Layer], jax.Array], dict[str, jax.Array]]:
  """The activations function of an MLP in this module's layout for :func:`dimat_gossip`: ``(layers, x) ->
  {'hidden_k': (batch, units)}``, the post-activation outputs of the hidden layers (JAX, any dtype)."""

  def activations(layers, x):
    out, h = {}, x.reshape(x.shape[0], -1)
    for k, layer in enumerate(layers[:-1]):
      h = activation(h @ layer['kernel'] + layer['bias'])
      out[f'hidden_{k}'] = h
    return out

  return activations


def dense_activations(kernel: Sequence[Any], bias: Sequence[Any], *, label: str = 'hidden',
                      activation: Callable[[jax.Array], jax.Array] = jax.nn.relu
                      ) -> Callable[[PyTree, jax.Array], dict[str, jax.Array]]:
  """The activations function of one dense layer inside any parameter tree: ``(params, x) -> {label:
  activation(x @ kernel + bias)}``, ``kernel`` and ``bias`` the key paths of its leaves."""

  def get(tree, path):
    for k in path:
      tree = tree[k]
    return tree

  return lambda params, x: {label: activation(x @ get(params, kernel) + get(params, bias))}


def unit_similarity(z_ref: jax.Array, z_other: jax.Array, similarity: str = 'correlation') -> jax.Array:
  """:func:`match_units`'s (units x units) similarity in JAX: Pearson correlation (a constant unit: 0) or the
  raw inner product, of two (batch, units) activation matrices, in float32 or wider."""
  a = z_ref.astype(compute_dtype(z_ref))
  b = z_other.astype(a.dtype)
  if similarity == 'inner':
    return a.T @ b
  a = a - jnp.mean(a, axis=0)
  b = b - jnp.mean(b, axis=0)
  norms = jnp.linalg.norm(a, axis=0)[:, None] * jnp.linalg.norm(b, axis=0)[None, :]
  return jnp.where(norms > 0, (a.T @ b) / jnp.where(norms > 0, norms, 1.0), 0.0)


def _spec_leaves(spec, params, name):
  labels, treedef = jax.tree.flatten(spec, is_leaf=lambda x: isinstance(x, tuple))
  if treedef != jax.tree.structure(params):
    raise ValueError(f'{name}: spec must have the structure of the parameters {jax.tree.structure(params)}, got '
                     f'{treedef}')
  for label, leaf in zip(labels, jax.tree.leaves(params)):
    if len(label) != jnp.ndim(leaf):
      raise ValueError(f'{name}: spec entry {label!r} must name each of the {jnp.ndim(leaf)} axes of a leaf of '
                       f'shape {jnp.shape(leaf)}')
  return labels


def permute_tree(params: PyTree, spec: PyTree, perms: Mapping[str, jax.Array]) -> PyTree:
  """``params`` with every axis labelled g in ``spec`` reordered by ``perms[g]`` (new unit u is old ``perms[g][u]``):
  :func:`permute_mlp` for any model described by a permutation spec."""
  labels = _spec_leaves(spec, params, 'permute_tree')

  def move(x, label):
    for ax, group in enumerate(label):
      if group is not None:
        x = jnp.take(x, perms[group], axis=ax)
    return x

  leaves, treedef = jax.tree.flatten(params)
  return jax.tree.unflatten(treedef, [move(x, label) for x, label in zip(leaves, labels)])


def dimat_gossip(topology: Topology | None, *, axis_name: str, spec: PyTree,
                 activations: Callable[[PyTree, jax.Array], Mapping[str, jax.Array]], similarity: str = 'correlation',
                 solver: str = 'hungarian', merge_every: int = 1) -> optax.GradientTransformationExtraArgs:
  r"""The DIMAT merge after the local step, every ``merge_every`` steps: x_i moves to
  :math:`\sum_j W_{ij}\,\pi_{ij}(x_j + u_j)`, :math:`\pi_{ii} = \mathrm{id}`; on the other steps to
  :math:`x_i + u_i`.

  ``update(updates, state, params, *, batch)``: ``batch`` is this worker's inputs, on which it computes its own
  half-step model's activations and every received one's (``activations(model, batch)``, a dict of (batch, units)
  arrays keyed by the labels of ``spec``); for each label and neighbour the permutation maximising the summed
  similarity of matched units (:func:`unit_similarity`) is one linear assignment
  (:func:`decentral.p2p.assignment.linear_assignment`), and the neighbour's axes labelled so are reordered by it.
  Each layer is matched on the two models' own activations, as :func:`align_mlp` does. On a general graph every
  worker's model is gathered and aligned (its weight zero if not a neighbour); on a circulant graph only the
  neighbours'.

  Args:
    topology: the graph (its size must match the axis), or None for the complete graph.
    axis_name: the worker axis.
    spec: the permutation spec (module docstring; :func:`mlp_spec` for the host layout).
    activations: ``(params, batch) -> {label: (batch, units)}``.
    similarity: ``'correlation'`` (DIMAT's and ZipIt's) or ``'inner'`` (Git Re-Basin's).
    solver: ``'hungarian'`` (exact, in JAX) or ``'scipy'`` (host callback); see :mod:`decentral.p2p.assignment`.
    merge_every: merge after every k-th local step (k >= 1); the steps between are local.

  Returns:
    A ``GradientTransformationExtraArgs`` (needs ``params`` and ``batch``); its state counts the steps.
  """
  optim_checks.one_of('dimat_gossip: similarity', similarity, SIMILARITIES)
  optim_checks.one_of('dimat_gossip: solver', solver, SOLVERS)
  optim_checks.positive_int('dimat_gossip: merge_every', merge_every)

  def init_fn(params):
    del params
    return axis.varying(DimatState(jnp.zeros([], jnp.int32)), axis_name)

  def update_fn(updates, state, params=None, *, batch=None, **extra):
    del extra
    need_params(params, 'dimat_gossip')
    if batch is None:
      raise ValueError('dimat_gossip needs this worker\'s inputs: call update(updates, state, params, batch=...)')
    labels = {g for label in _spec_leaves(spec, params, 'dimat_gossip') for g in label if g is not None}
    count = state.count + 1
    half = jax.tree.map(lambda p, u: p + u.astype(p.dtype), params, updates)

    def merge(tree):
      received, senders, weights = neighbours(tree, topology, axis_name)
      me = axis.worker_index(axis_name)
      own = activations(tree, batch)
      if set(own) != labels:
        raise ValueError(f'dimat_gossip: activations returned {sorted(own)}, the spec labels {sorted(labels)}')

      def aligned(model, sender):
        theirs = activations(model, batch)
        perms = {}
        for g in labels:
          perm = linear_assignment(unit_similarity(own[g], theirs[g], similarity), maximize=True, solver=solver)
          perms[g] = jnp.where(sender == me, jnp.arange(perm.shape[0], dtype=perm.dtype), perm)  # pi_ii = id
        return permute_tree(model, spec, perms)

      stacked = jax.vmap(aligned)(received, senders)
      mixed = jax.tree.map(lambda x, h: jnp.tensordot(weights.astype(compute_dtype(x)), x.astype(compute_dtype(x)),
                                                      1).astype(h.dtype), stacked, tree)
      return axis.varying(mixed, axis_name)

    if merge_every == 1:
      new = merge(half)
    else:  # every worker has the same count, so all take the same branch and the collectives match
      new = lax.cond(count % merge_every == 0, merge, lambda t: axis.varying(t, axis_name), half)
    out = jax.tree.map(lambda m, p: (m - p).astype(p.dtype), new, params)
    return out, axis.varying(DimatState(count), axis_name)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def dimat_dsgd(learning_rate: optax.ScalarOrSchedule, topology: Topology | None, *, axis_name: str, spec: PyTree,
               activations: Callable[[PyTree, jax.Array], Mapping[str, jax.Array]], merge_every: int = 1,
               similarity: str = 'correlation', solver: str = 'hungarian', momentum: float | None = None
               ) -> optax.GradientTransformationExtraArgs:
  r"""DIMAT (Saadati et al., CVPR 2024, arXiv 2404.08079) on the worker axis: local SGD, and every
  ``merge_every`` steps the aligned merge :math:`x_i \leftarrow \sum_j W_{ij}\,\pi_{ij}(x_j - \gamma g_j)`.

  ``optax.chain(optax.sgd(learning_rate, momentum), dimat_gossip(...))`` (:func:`decentral.p2p.sgd.sgd_then`);
  with every :math:`\pi_{ij}` the identity it would be D-SGD with a merge every k steps. Conventions as
  :func:`dimat_merge` (align every neighbour to oneself on one's own data, then average with W; correlation
  matching per hidden layer); the assignment is exact (``solver``).

  Args:
    learning_rate: the local step size (or schedule).
    topology: the graph, or None for the complete graph.
    axis_name: the worker axis.
    spec, activations, similarity, solver, merge_every: see :func:`dimat_gossip`.
    momentum: optional local heavy-ball momentum (optax.sgd convention; the paper's local optimizer is SGD).

  Returns:
    A ``GradientTransformationExtraArgs`` for one worker: ``update(grads, state, params, batch=...)``.

  >>> import jax, jax.numpy as jnp, optax
  >>> from decentral import axis
  >>> from decentral.p2p import topology
  >>> tx = dimat_dsgd(0.0, topology.complete(2), axis_name='workers', spec=mlp_spec(2),
  ...                 activations=mlp_activations())
  >>> a = [{'kernel': jnp.array([[1., -1.]]), 'bias': jnp.zeros(2)}, {'kernel': jnp.array([[1.], [2.]]),
  ...      'bias': jnp.zeros(1)}]
  >>> b = [{'kernel': jnp.array([[-1., 1.]]), 'bias': jnp.zeros(2)}, {'kernel': jnp.array([[2.], [1.]]),
  ...      'bias': jnp.zeros(1)}]  # a with its two hidden units swapped
  >>> def step(p, x):
  ...   u, _ = tx.update(jax.tree.map(jnp.zeros_like, p), tx.init(p), p, batch=x)
  ...   return optax.apply_updates(p, u)
  >>> models = jax.tree.map(lambda *l: jnp.stack(l), a, b)
  >>> x = jnp.linspace(-1., 1., 8)[:, None]
  >>> axis.run(step, 2, in_axes=(0, None))(models, x)[0]['kernel'].tolist()  # the twins merge without loss
  [[[1.0, -1.0]], [[-1.0, 1.0]]]
  """
  return sgd_then('dimat_dsgd', learning_rate, momentum,
                  lambda: dimat_gossip(topology, axis_name=axis_name, spec=spec, activations=activations,
                                       similarity=similarity, solver=solver, merge_every=merge_every))
