"""The Randomized Quantization Mechanism (RQM; Youn, Hu, Ziani, Abernethy, 2306.11913) and its Renyi DP.

RQM privatises a clipped update by quantisation alone, with two levels of randomness. For one coordinate
x in [-c, c], levels B_j = -Delta + 2 j Delta / (m - 1), j = 0..m-1, with Delta > c:

1. keep each interior level independently with probability q (B_0 and B_{m-1} are always kept);
2. with B_lo <= x < B_hi the nearest kept levels below and above x, output B_hi with probability
   (x - B_lo) / (B_hi - B_lo), else B_lo.

The output is unbiased (E = x) and costs ceil(log2 m) bits per coordinate. Its output distribution is
available in closed form (:func:`output_distribution`: P(lo = l) P(hi = u) factorise over the disjoint
level sets), so the Renyi divergence of order alpha between the outputs for x and x' is computed exactly.
The RDP curve eps(alpha) = sup_{x, x' in [-c, c]} D_alpha(P_x || P_x') is also exact: on each interval
between consecutive grid points {-c, c} U {B_j} the distribution is affine in x, and
sum_j P_j^alpha Q_j^(1-alpha) is jointly convex for alpha > 1, so the supremum is attained at those points
(:func:`rdp`). A d-dimensional update quantised coordinate-wise composes to d eps(alpha) (the neighbouring
update may change every coordinate across [-c, c]); T rounds to T d eps(alpha), converted to (epsilon, delta)
with ``dp_accounting.rdp.compute_epsilon`` (:func:`epsilon`).

Client subsampling (each round, a client takes part with probability gamma; neighbouring data sets differ in
one client's data, whose update may change arbitrarily in [-c, c]^d): whether that client takes part is the same
in both worlds, so the server's view of it is the mixture ``(1 - gamma) [absent] + gamma P_x`` against
``(1 - gamma) [absent] + gamma P_x'``, and its Renyi divergence is, exactly,

    eps_gamma(alpha) = log(1 - gamma + gamma exp((alpha - 1) d eps(alpha))) / (alpha - 1)

(the absent outcome contributes ``(1 - gamma)^alpha (1 - gamma)^(1 - alpha)``; the present ones
``gamma sum_o P_x(o)^alpha P_x'(o)^(1-alpha)``, a product over coordinates, largest at the same worst-case pairs
as without subsampling since the map is increasing). This is the subsampled mechanism's own RDP, not a generic
amplification bound; its T-fold composition is converted by dp_accounting as above
(:func:`rdp_curve`, :func:`epsilon` with ``sampling_prob``). The Poisson binomial mechanism the paper compares
with is :mod:`decentral.compression.poisson_binomial`.

>>> import numpy as np
>>> p = output_distribution(0.3, c=1.0, delta=1.5, m=5, q=0.5)
>>> round(float(p.sum()), 6), round(float(p @ levels(1.5, 5)), 6)  # a distribution with mean x
(1.0, 0.3)
>>> round(rdp(2.0, c=1.0, delta=1.5, m=5, q=0.5), 4) > 0
True
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from decentral import checks
from decentral.compression.wire import Compressor, pack_bits, unpack_bits


def _check(c, delta, m, q):
  checks.positive_finite(c, 'c')
  if not (delta > c and math.isfinite(delta)):
    raise ValueError(f'delta must be finite and larger than c={c}, got {delta!r}')
  if not isinstance(m, (int, np.integer)) or m < 2:
    raise ValueError(f'm (number of levels) must be an integer >= 2, got {m!r}')
  checks.fraction(q, 'q')


def levels(delta: float, m: int) -> np.ndarray:
  """The m quantisation levels B_j = -Delta + 2 j Delta / (m - 1)."""
  return -delta + 2.0 * np.arange(m) * delta / (m - 1)


def output_distribution(x: float, *, c: float, delta: float, m: int, q: float) -> np.ndarray:
  """P(RQM(x) = B_j), j = 0..m-1, in closed form (float64).

  With a the interval B_a <= x < B_{a+1}: P(lo = l) = q_l prod_{l < i <= a} (1 - q_i) for l <= a, and
  P(hi = u) = q_u prod_{a < i < u} (1 - q_i) for u > a (q_0 = q_{m-1} = 1), independent; given (lo, hi) the
  rounding is unbiased.
  """
  _check(c, delta, m, q)
  if not -c <= x <= c:
    raise ValueError(f'x must lie in [-c, c] = [{-c}, {c}], got {x!r}')
  b = levels(delta, m)
  keep = np.full(m, float(q))
  keep[0] = keep[-1] = 1.0
  a = int(np.clip(np.searchsorted(b, x, side='right') - 1, 0, m - 2))
  p_lo = np.zeros(m)
  for l in range(a + 1):
    p_lo[l] = keep[l] * np.prod(1 - keep[l + 1:a + 1])
  p_hi = np.zeros(m)
  for u in range(a + 1, m):
    p_hi[u] = keep[u] * np.prod(1 - keep[a + 1:u])
  out = np.zeros(m)
  for l in range(a + 1):
    for u in range(a + 1, m):
      w = p_lo[l] * p_hi[u]
      if w == 0:
        continue
      up = (x - b[l]) / (b[u] - b[l])
      out[u] += w * up
      out[l] += w * (1 - up)
  return out


def renyi_divergence(p: np.ndarray, r: np.ndarray, alpha: float) -> float:
  """D_alpha(P || R) = log(sum_j P_j^alpha R_j^(1-alpha)) / (alpha - 1) for alpha > 1 (inf off support)."""
  if not alpha > 1:
    raise ValueError(f'alpha must be > 1, got {alpha!r}')
  p, r = np.asarray(p, np.float64), np.asarray(r, np.float64)
  if np.any((p > 0) & (r <= 0)):
    return math.inf
  s = p > 0
  # log-sum-exp for large alpha
  terms = alpha * np.log(p[s]) + (1 - alpha) * np.log(r[s])
  top = terms.max()
  return float((top + np.log(np.exp(terms - top).sum())) / (alpha - 1))


def worst_case_inputs(*, c: float, delta: float, m: int) -> np.ndarray:
  """{-c, c} and the levels strictly inside: where the supremum of the divergence is attained."""
  b = levels(delta, m)
  return np.unique(np.concatenate([[-c, c], b[(b > -c) & (b < c)]]))


def rdp(alpha: float, *, c: float, delta: float, m: int, q: float) -> float:
  """eps(alpha) of one coordinate: the largest D_alpha(P_x || P_x') over x, x' in [-c, c], exactly."""
  return _sup_divergence(alpha, _extreme_distributions(c, delta, m, q))


def _extreme_distributions(c, delta, m, q):
  xs = worst_case_inputs(c=c, delta=delta, m=m)
  return [output_distribution(float(x), c=c, delta=delta, m=m, q=q) for x in xs]


def _sup_divergence(alpha, dists):
  """max over pairs of D_alpha, vectorised (every output level has positive probability when q < 1)."""
  d = np.asarray(dists)
  if np.any(d <= 0):  # q = 1 (deterministic rounding) can put zeros off a support: pairwise with inf
    return max(renyi_divergence(p, r, alpha) for p in d for r in d)
  logd = np.log(d)
  terms = alpha * logd[:, None, :] + (1 - alpha) * logd[None, :, :]
  top = terms.max(-1, keepdims=True)
  return float(((top[..., 0] + np.log(np.exp(terms - top).sum(-1))) / (alpha - 1)).max())


def subsampled_rdp(per_release: float, alpha: float, sampling_prob: float) -> float:
  """The exact RDP of a release made with probability ``sampling_prob`` (absence visible, identical in both
  worlds) whose RDP when made is ``per_release``: ``log(1 - g + g exp((alpha - 1) eps)) / (alpha - 1)``."""
  checks.fraction(sampling_prob, 'sampling_prob')
  if sampling_prob == 1.0 or math.isinf(per_release):
    return per_release
  log_terms = np.logaddexp(math.log1p(-sampling_prob), math.log(sampling_prob) + (alpha - 1) * per_release)
  return float(log_terms / (alpha - 1))


def rdp_curve(orders: Sequence[float], *, c: float, delta: float, m: int, q: float, dims: int = 1,
              rounds: int = 1, sampling_prob: float = 1.0) -> np.ndarray:
  """RDP of ``rounds`` releases of a ``dims``-dimensional RQM update, each made with probability
  ``sampling_prob``: ``rounds * eps_gamma(alpha)`` (module docstring; ``rounds * dims * eps(alpha)`` at 1)."""
  checks.positive_int(dims, 'dims')
  checks.non_negative_int(rounds, 'rounds')
  dists = _extreme_distributions(c, delta, m, q)
  return np.array([rounds * subsampled_rdp(dims * _sup_divergence(a, dists), a, sampling_prob) for a in orders])


DEFAULT_ORDERS = tuple([1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 16.0, 20.0, 32.0, 64.0])


def epsilon(target_delta: float, *, c: float, delta: float, m: int, q: float, dims: int = 1, rounds: int = 1,
            orders: Sequence[float] = DEFAULT_ORDERS, sampling_prob: float = 1.0) -> tuple[float, float]:
  """(epsilon, optimal order) of the composed RQM releases at ``target_delta``, via dp_accounting's RDP
  conversion (``dp_accounting.rdp.compute_epsilon``); ``sampling_prob`` < 1 for client subsampling."""
  from dp_accounting import rdp as dp_rdp
  if not 0 < target_delta < 1:
    raise ValueError(f'target_delta must be in (0, 1), got {target_delta!r}')
  curve = rdp_curve(orders, c=c, delta=delta, m=m, q=q, dims=dims, rounds=rounds, sampling_prob=sampling_prob)
  eps, order = dp_rdp.compute_epsilon(list(orders), list(curve), target_delta)
  return float(eps), float(order)


def rqm(c: float, delta: float, m: int = 16, q: float = 0.5) -> Compressor:
  """RQM as a :class:`decentral.compression.Compressor`: unbiased on [-c, c], ceil(log2 m) bits per entry.

  Entries outside [-c, c] are clipped first (the mechanism's sensitivity assumption; unbiased only inside).
  The levels are public, so only the level indices are sent: ceil(d ceil(log2 m) / 8) bytes.

  Args:
    c: the clipping bound.
    delta: Delta > c, the outermost level.
    m: number of levels.
    q: probability of keeping each interior level.
  """
  _check(c, delta, m, q)
  width = max(1, int(math.ceil(math.log2(m))))
  b = jnp.asarray(levels(delta, m), jnp.float32)

  def compress(x, key):
    if key is None:
      raise ValueError('rqm needs a PRNG key')
    k_keep, k_round = jax.random.split(key)
    flat = jnp.clip(x.reshape(-1).astype(jnp.float32), -c, c)
    kept = jax.random.bernoulli(k_keep, q, (flat.size, m)).at[:, 0].set(True).at[:, -1].set(True)
    j = jnp.arange(m)
    a = jnp.clip(jnp.searchsorted(b, flat, side='right') - 1, 0, m - 2)[:, None]
    lo = jnp.max(jnp.where(kept & (j <= a), j, 0), axis=1)
    hi = jnp.min(jnp.where(kept & (j > a), j, m - 1), axis=1)
    up = jax.random.uniform(k_round, flat.shape) < (flat - b[lo]) / (b[hi] - b[lo])
    code_dtype = jnp.uint8 if m <= 256 else jnp.uint16
    return {'codes': jnp.where(up, hi, lo).astype(code_dtype)}

  def decompress(p, shape, dtype):
    return b[p['codes'].astype(jnp.int32)].reshape(shape).astype(dtype)

  def encode(p, shape, dtype):
    del shape, dtype
    return pack_bits(np.asarray(p['codes']), width)

  def decode(data, shape, dtype):
    del dtype
    codes = unpack_bits(data, width, math.prod(shape))
    return {'codes': codes.astype(np.uint8 if m <= 256 else np.uint16)}

  return Compressor(f'rqm{m}', compress, decompress,
                         lambda s, dt: (math.prod(s) * width + 7) // 8,
                         encode, decode, unbiased=True)

