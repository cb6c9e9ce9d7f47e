"""The Poisson binomial mechanism (PBM; Chen, Ozgur & Kairouz 2022, arXiv 2207.09916), the baseline RQM is
compared with (Youn et al., arXiv 2306.11913), with its exact per-message Renyi DP.

Each coordinate x in [-c, c] is sent as ``Z ~ Binomial(m, p(x))`` with ``p(x) = 1/2 + theta x / c``,
``0 < theta <= 1/4``; the receiver's unbiased estimate is ``x_hat = c (Z - m/2) / (m theta)``, of variance
``c^2 p (1 - p) / (m theta^2)``; a message costs ``ceil(log2(m + 1))`` bits a coordinate.

Privacy of one message (the guarantee RQM's own analysis gives, for one client's quantised update): the output
law is a product of m Bernoulli(p(x)) draws, so ``D_alpha(P_x || P_x') = m D_alpha(Bern(p(x)) || Bern(p(x')))``;
``sum_o P^alpha Q^(1-alpha)`` is jointly convex for alpha > 1 and ``p`` is affine in ``x``, so the supremum over
``x, x'`` in [-c, c] is at the corners: ``eps(alpha) = m D_alpha(Bern(1/2 + theta) || Bern(1/2 - theta))``, per
coordinate, exactly. PBM's paper analyses the sum over n clients under secure aggregation instead (much smaller
epsilon); that central guarantee is not computed here.
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from decentral import checks
from decentral.compression import privacy
from decentral.compression.wire import Compressor, pack_bits, unpack_bits


def _check(c, m, theta):
  checks.positive_finite(c, 'c')
  if not isinstance(m, (int, np.integer)) or m < 1:
    raise ValueError(f'm (number of Bernoulli trials) must be an integer >= 1, got {m!r}')
  if not 0 < theta <= 0.25:
    raise ValueError(f'theta must be in (0, 1/4], got {theta!r}')


def pbm_rdp(alpha: float, *, m: int, theta: float) -> float:
  """eps(alpha) of one coordinate: ``m D_alpha(Bern(1/2 + theta) || Bern(1/2 - theta))``, exact."""
  _check(1.0, m, theta)
  p, r = np.array([0.5 + theta, 0.5 - theta]), np.array([0.5 - theta, 0.5 + theta])
  return m * privacy.renyi_divergence(p, r, alpha)


def pbm_rdp_curve(orders: Sequence[float], *, m: int, theta: float, dims: int = 1, rounds: int = 1,
                  sampling_prob: float = 1.0) -> np.ndarray:
  """RDP of ``rounds`` messages of ``dims`` coordinates, each sent with probability ``sampling_prob`` (the same
  exact subsampled RDP as :func:`decentral.compression.privacy.rdp_curve`)."""
  checks.positive_int(dims, 'dims')
  checks.non_negative_int(rounds, 'rounds')
  return np.array([rounds * privacy.subsampled_rdp(dims * pbm_rdp(a, m=m, theta=theta), a, sampling_prob)
                   for a in orders])


def pbm_epsilon(target_delta: float, *, m: int, theta: float, dims: int = 1, rounds: int = 1,
                sampling_prob: float = 1.0, orders: Sequence[float] = privacy.DEFAULT_ORDERS) -> tuple[float, float]:
  """(epsilon, optimal order) at ``target_delta`` through ``dp_accounting.rdp.compute_epsilon``."""
  from dp_accounting import rdp as dp_rdp
  if not 0 < target_delta < 1:
    raise ValueError(f'target_delta must be in (0, 1), got {target_delta!r}')
  curve = pbm_rdp_curve(orders, m=m, theta=theta, dims=dims, rounds=rounds, sampling_prob=sampling_prob)
  eps, order = dp_rdp.compute_epsilon(list(orders), list(curve), target_delta)
  return float(eps), float(order)


def pbm_variance(x: float, *, c: float, m: int, theta: float) -> float:
  """Variance of the estimate of one coordinate: ``c^2 p (1 - p) / (m theta^2)``, ``p = 1/2 + theta x / c``."""
  _check(c, m, theta)
  p = 0.5 + theta * x / c
  return c * c * p * (1 - p) / (m * theta * theta)


def pbm(c: float, m: int = 15, theta: float = 0.25) -> Compressor:
  """PBM as a :class:`decentral.compression.Compressor`: unbiased on [-c, c], ``ceil(log2(m + 1))`` bits a
  coordinate (entries outside [-c, c] are clipped first).

  Args:
    c: the clipping bound.
    m: Bernoulli trials per coordinate.
    theta: ``p(x) = 1/2 + theta x / c``; larger is less private and more accurate.

  >>> import jax.numpy as jnp
  >>> pbm(1.0, m=15).nbytes((1000,), jnp.float32)   # 4 bits a coordinate
  500
  """
  _check(c, m, theta)
  width = max(1, int(math.ceil(math.log2(m + 1))))

  def compress(x, key):
    if key is None:
      raise ValueError('pbm needs a PRNG key')
    flat = jnp.clip(x.reshape(-1).astype(jnp.float32), -c, c)
    z = jax.random.binomial(key, m, 0.5 + theta * flat / c)
    return {'codes': z.astype(jnp.uint8 if m < 256 else jnp.uint16)}

  def decompress(p, shape, dtype):
    z = p['codes'].astype(jnp.float32)
    return (c * (z - m / 2) / (m * theta)).reshape(shape).astype(dtype)

  def encode(p, shape, dtype):
    del shape, dtype
    return pack_bits(np.asarray(p['codes']), width)

  def decode(data, shape, dtype):
    del dtype
    return {'codes': unpack_bits(data, width, math.prod(shape)).astype(np.uint8 if m < 256 else np.uint16)}

  return Compressor(f'pbm{m}', compress, decompress, lambda s, dt: (math.prod(s) * width + 7) // 8, encode,
                    decode, unbiased=True)
