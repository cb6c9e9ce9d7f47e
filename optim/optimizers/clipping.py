"""Coordinate-wise clipping at a global threshold set by the largest coordinates (Pan & Li 2023).

Pan & Li, "Toward Understanding Why Adam Converges Faster Than SGD for Transformers", arXiv 2306.00204: a small
fraction of coordinates carries most of the directional sharpness of SGD's step; clipping those coordinates to
the magnitude of the next largest one reduces it. The threshold is global over all parameters, as in the
authors' research code (``clip_top_coordinates``): with ``N`` coordinates and ``k = floor(N * fraction)``::

    tau = threshold_scale * (k+1)-th largest |g|   (0-indexed: sorted(|g|, descending)[k]; tau = 0 when k = N)
    g_i <- g_i if |g_i| < tau else sign(g_i) * tau

so exactly the coordinates above the ``(k+1)``-th largest change (and ties with it, which keep their value).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from optim import checks

PyTree = Any


_SAMPLE = 1 << 15  # coordinates in the sample that places the first thresholds
_RANK_OFFSETS = (-3.0, -0.75, 0.0, 0.75, 3.0)  # in standard deviations of the rank estimate


def _counting_pass(leaves: list[jax.Array], key: Callable[[jax.Array], jax.Array], thresholds: jax.Array,
                   lo: jax.Array, hi: jax.Array, count_dtype: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
  """One read of every leaf, ``b = key(leaf)``: ``#{b >= t}`` for each threshold, ``max{b < hi}``, ``min{b >= lo}``.

  A variadic ``lax.reduce`` so that XLA computes all of them in one fused loop over each leaf (separate sums
  would each read the leaf again; on XLA:CPU a single-operand integer sum is also several times slower).
  """
  uint = lo.dtype
  n_thr = thresholds.shape[0]
  none_above = jnp.asarray(np.iinfo(np.dtype(uint)).max, uint)
  zeros = (jnp.zeros([], count_dtype),) * n_thr
  counts, below, above = jnp.zeros([n_thr], count_dtype), jnp.zeros([], uint), none_above

  def combine(a, b):
    return (tuple(x + y for x, y in zip(a[:n_thr], b[:n_thr])) +
            (jnp.maximum(a[n_thr], b[n_thr]), jnp.minimum(a[n_thr + 1], b[n_thr + 1])))

  for leaf in leaves:
    b = key(leaf).reshape(-1)  # recomputed in every pass, fused: cheaper than storing the keys
    ops = tuple((b >= thresholds[j]).astype(count_dtype) for j in range(n_thr))
    ops += (jnp.where(b < hi, b, jnp.zeros([], uint)), jnp.where(b >= lo, b, none_above))
    out = jax.lax.reduce(ops, zeros + (jnp.zeros([], uint), none_above), combine, (0,))
    counts = counts + jnp.stack(out[:n_thr])
    below, above = jnp.maximum(below, out[n_thr]), jnp.minimum(above, out[n_thr + 1])
  return counts, below, above


def _interpolated(lo, hi, c_lo, c_hi, k, float_dtype):
  """Next thresholds: where a linear count between ``lo`` and ``hi`` puts ranks around ``k + 1``, and the middle."""
  m = (c_lo - c_hi).astype(float_dtype)
  j = (k + 1 - c_hi).astype(float_dtype)  # the wanted rank counted down from hi, in [1, m]
  sd = jnp.sqrt(j * (m - j) / m) + 1.0
  width = (hi - lo).astype(float_dtype)
  ranks = j - 0.5 + sd * jnp.asarray(_RANK_OFFSETS, float_dtype)
  offsets = jnp.clip(jnp.round(ranks / m * width), 0, width)
  guesses = hi - offsets.astype(hi.dtype)
  return jnp.concatenate([guesses, (lo + (hi - lo) // 2)[None]])


def kth_largest_key(leaves: list[jax.Array], key: Callable[[jax.Array], jax.Array], k: jax.Array, top: jax.Array,
                    first_guesses: jax.Array, count_dtype: Any, float_dtype: Any) -> jax.Array:
  """``max{t <= top : #{b >= t} >= k + 1}`` over the unsigned keys ``b = key(leaf)`` of every leaf (``0`` if none).

  Exact. Keeps ``lo <= answer < hi`` with the counts at both ends; each pass counts at a few thresholds placed
  where a linear interpolation of the counts between ``lo`` and ``hi`` puts the wanted rank (plus the midpoint,
  so the interval at least halves), and snaps ``lo``/``hi`` to the nearest data values. On smooth data a handful
  of passes suffice; the worst case is a bisection's. The first thresholds are ``first_guesses``.
  """
  uint = top.dtype
  n = sum(int(np.size(x)) for x in leaves)
  k = jnp.asarray(k, count_dtype)

  def not_done(carry):
    lo, hi = carry[:2]
    return hi - lo > 1

  def step(carry):
    lo, hi, c_lo, c_hi, guesses = carry
    thr = jnp.clip(guesses, lo + 1, hi - 1)
    # The cond (always taken here) keeps the pass a computation of its own: inlined in the loop body, XLA:CPU
    # compiles the same reductions ~4x slower.
    counts, below, above = jax.lax.cond(
        hi - lo > 1, lambda: _counting_pass(leaves, key, thr, lo, hi, count_dtype),
        lambda: (jnp.zeros(thr.shape, count_dtype), lo, hi))
    ok = counts >= k + 1
    new_lo = jnp.max(jnp.where(ok, thr, lo))
    new_c_lo = jnp.min(jnp.where(ok, counts, c_lo))
    new_hi = jnp.min(jnp.where(ok, hi, thr))
    new_c_hi = jnp.max(jnp.where(ok, c_hi, counts))
    # No data lies in (below, hi) or [lo, above): their counts are c_hi and c_lo.
    new_c_lo = jnp.where(above > new_lo, c_lo, new_c_lo)
    new_lo = jnp.maximum(new_lo, above)
    new_c_hi = jnp.where(below + 1 < new_hi, c_hi, new_c_hi)
    new_hi = jnp.minimum(new_hi, below + 1)
    # The wanted value is the largest (c_hi = k) or the smallest (c_lo = k + 1) data value in [lo, hi).
    last = c_hi == k
    new_lo = jnp.where(last, below, jnp.where(c_lo == k + 1, above, new_lo))
    new_hi = jnp.where(last | (c_lo == k + 1), new_lo + 1, new_hi)
    return (new_lo, new_hi, new_c_lo, new_c_hi,
            _interpolated(new_lo, new_hi, new_c_lo, new_c_hi, k, float_dtype))

  # k >= n: no t qualifies; an empty interval skips the loop.
  hi = jnp.where(k >= n, jnp.ones([], uint), top + jnp.ones([], uint))
  start = (jnp.zeros([], uint), hi, jnp.asarray(n, count_dtype), jnp.zeros([], count_dtype), first_guesses.astype(uint))
  lo = jax.lax.while_loop(not_done, step, start)[0]
  return jnp.where(k >= n, jnp.zeros([], uint), lo)


def _sample(leaves: list[jax.Array], size: int) -> jax.Array:
  """About ``size`` coordinates of the tree, evenly strided through every leaf (an odd stride, so that the
  sample does not keep returning to the same columns of a matrix)."""
  n = sum(int(np.size(x)) for x in leaves)
  stride = max(1, n // size) | 1
  return jnp.concatenate([x.reshape(-1)[::stride] for x in leaves])


def top_fraction_threshold(tree: PyTree, fraction: float) -> jax.Array:
  """The ``(floor(N * fraction) + 1)``-th largest ``|x|`` over every leaf of ``tree`` (``0`` if that exceeds ``N``).

  Exact and jit-able with a traced ``fraction``, with no sort or concatenation of the ``N`` coordinates (the
  research code sorts all of them every step; on XLA:CPU a sort or ``lax.top_k`` of 10M coordinates costs
  seconds). The answer is searched over the bit patterns of ``|x|`` (monotone for non-negative floats) by
  :func:`kth_largest_key`: a sorted sample of ~32k coordinates places the first thresholds around the wanted
  rank, then each pass is one fused read of the tree counting at a few interpolated thresholds, typically 3-5
  passes where a bisection over the bits needs 31 (63 in float64). ``k`` is computed in float64 for a concrete
  ``fraction``, in the leaves' precision for a traced one (an off-by-one in ``k`` is possible above 2^24
  coordinates in float32). Non-finite entries count as the largest magnitudes (NaN as infinity) and propagate.

  Args:
    tree: a pytree of float arrays.
    fraction: in [0, 1].

  Returns:
    A scalar of the widest leaf dtype (at least float32).
  """
  leaves = jax.tree.leaves(tree)
  if not leaves:
    raise ValueError('top_fraction_threshold: the tree has no leaves')
  n = sum(int(np.size(x)) for x in leaves)
  dtype = jnp.promote_types(jnp.result_type(*leaves), jnp.float32)
  wide = dtype == jnp.float64
  uint, count_dtype = (jnp.uint64, jnp.int64) if wide else (jnp.uint32, jnp.int32)
  if checks.is_concrete(fraction):
    k = int(np.floor(np.float64(n) * float(fraction)))  # the research code's int(N * frac), in float64
  else:
    k = jnp.floor(n * jnp.asarray(fraction, dtype)).astype(count_dtype)
  k = jnp.minimum(jnp.asarray(k, count_dtype), n)
  top = jax.lax.bitcast_convert_type(jnp.asarray(np.inf, dtype), uint)
  # NaN patterns lie above infinity's; clamping them to it makes NaN count as infinity.
  key = lambda x: jnp.minimum(jax.lax.bitcast_convert_type(jnp.abs(x.astype(dtype)), uint), top)
  sample = jnp.sort(key(_sample(leaves, _SAMPLE)))[::-1]
  s = sample.shape[0]
  p = (k + 1).astype(dtype) / n
  rank = p * s  # the wanted rank in the sample, counted from its largest element (1-based)
  sd = jnp.sqrt(s * p * (1 - p)) + 1.0
  ranks = jnp.round(rank - 1 + sd * jnp.asarray(_RANK_OFFSETS, dtype)).astype(jnp.int32)
  guesses = jnp.concatenate([sample[jnp.clip(ranks, 0, s - 1)], (top // 2)[None]])
  found = kth_largest_key(leaves, key, k, top, guesses, count_dtype, dtype)
  return jax.lax.bitcast_convert_type(found, dtype)


def coordinate_clip(fraction: float = 0.01, threshold_scale: float = 1.0) -> optax.GradientTransformation:
  r"""Clips every coordinate to a global threshold set by the top ``fraction`` of coordinates.

  .. math::

    \tau = s \cdot |g|_{(k+1)}, \quad k = \lfloor N f \rfloor, \qquad
    \tilde g_i = \begin{cases} g_i & |g_i| < \tau \\ \mathrm{sign}(g_i)\,\tau & \text{otherwise} \end{cases}

  where :math:`|g|_{(j)}` is the j-th largest magnitude over all ``N`` coordinates of the tree. Stateless;
  place it before any optimizer to clip the gradient (``chain(coordinate_clip(f), optax.adam(lr))``) or after
  the optimizer's direction to clip the update. ``fraction=0`` leaves ``g`` unchanged; ``fraction=1`` maps it
  to zero. The research code's Adam clips only the gradient entering the first moment (the second moment sees
  the raw gradient); composition clips both.

  Args:
    fraction: ``f`` in [0, 1], the fraction of coordinates that get clipped.
    threshold_scale: ``s``, multiplies the threshold (``> 1`` clips fewer coordinates).

  Returns:
    A stateless ``optax.GradientTransformation``; updates keep their dtypes.

  Example:
    >>> import jax.numpy as jnp
    >>> from optim import coordinate_clip
    >>> g = {'a': jnp.array([10.0, -1.0, 0.5]), 'b': jnp.array([-4.0, 2.0])}
    >>> u, _ = coordinate_clip(fraction=0.4).update(g, coordinate_clip(0.4).init(g))
    >>> u['a'].tolist(), u['b'].tolist()  # k = 2: clip at the third largest |g|, 2
    ([2.0, -1.0, 0.5], [-2.0, 2.0])

  arXiv 2306.00204.
  """
  with checks.owner('coordinate_clip'):
    checks.check('fraction', fraction, lambda v: 0 <= v <= 1, 'in [0, 1]')
    checks.non_negative('threshold_scale', threshold_scale)

  def update_fn(updates, state, params=None):
    del params
    tau = top_fraction_threshold(updates, fraction) * threshold_scale

    def clip(g):
      t = tau.astype(jnp.promote_types(g.dtype, tau.dtype))
      return jnp.where(jnp.abs(g) < t, g, jnp.sign(g) * t).astype(g.dtype)

    return jax.tree.map(clip, updates), state

  return optax.GradientTransformation(lambda params: optax.EmptyState(), update_fn)


def coordinate_clip_sgd(learning_rate: optax.ScalarOrSchedule, fraction: float = 0.01,
                        threshold_scale: float = 1.0, momentum: float = 0.9, nesterov: bool = False,
                        weight_decay: float = 0.0) -> optax.GradientTransformation:
  """SGD with momentum on coordinate-clipped gradients, the paper's "clipped SGD".

  ``chain(coordinate_clip, add_decayed_weights, optax.sgd)``: the gradient is clipped first, coupled weight decay
  is added after clipping, then PyTorch-style heavy-ball momentum (``b_1 = g_1``, ``b <- mu b + g``), which is
  the research code's patched ``torch.optim.SGD``.

  Args:
    learning_rate: a float or an optax schedule.
    fraction: fraction of coordinates clipped.
    threshold_scale: multiplies the threshold.
    momentum: heavy-ball momentum.
    nesterov: Nesterov momentum.
    weight_decay: coupled L2 coefficient, added after clipping.

  Returns:
    An ``optax.GradientTransformation``.

  Example:
    >>> import jax.numpy as jnp
    >>> from optim import coordinate_clip_sgd
    >>> g = jnp.array([10.0, 1.0, -0.5, 0.2])
    >>> tx = coordinate_clip_sgd(learning_rate=1.0, fraction=0.25)
    >>> u, _ = tx.update(g, tx.init(g), g)
    >>> u.tolist()
    [-1.0, -1.0, 0.5, -0.2]

  arXiv 2306.00204.
  """
  with checks.owner('coordinate_clip_sgd'):
    checks.learning_rate(learning_rate)
    checks.non_negative('weight_decay', weight_decay)
    checks.decay_rate('momentum', momentum)
    return checks.structure_checked(optax.chain(
        coordinate_clip(fraction, threshold_scale),
        optax.add_decayed_weights(weight_decay),
        optax.sgd(learning_rate, momentum=momentum, nesterov=nesterov)), 'coordinate_clip_sgd')
