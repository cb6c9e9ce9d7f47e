"""Loss sequences for online learning: stochastic, adversarial and in between (the SEA model of Sachs et al. 2022,
studied for optimistic OMD in arXiv 2302.04552).

In the stochastically extended adversarial (SEA) model nature picks a distribution D_t each round (adversarially)
and the learner suffers f_t ~ D_t; with F_t = E f_t the two quantities the regret depends on are the cumulative
stochastic variance and the cumulative adversarial variation,

    sigma^2_{1:T} = sum_t max_x E||grad f_t(x) - grad F_t(x)||^2,
    Sigma^2_{1:T} = sum_{t>=2} sup_x ||grad F_t(x) - grad F_{t-1}(x)||^2.

:func:`sea_linear` makes linear losses ``f_t(x) = <theta_t, x>`` with ``theta_t = m_t + noise z_t / sqrt(d)``
(``z_t ~ N(0, I)``) and an adversarial mean ``m_t = scale * s_t u`` whose sign ``s_t`` flips every
``switch_every`` rounds. Then ``grad f_t = theta_t`` everywhere, so both sums are exact:
``sigma^2_{1:T} = T noise^2`` and ``Sigma^2_{1:T} = 4 scale^2 (number of flips)``. ``noise = 0`` is the
adversarial extreme, ``switch_every = 0`` (no flips) the stochastic (i.i.d.) one.

>>> import jax
>>> seq = sea_linear(jax.random.key(0), 100, 4, noise=0.5, switch_every=10)
>>> seq.theta.shape, float(seq.sigma_sq), float(seq.Sigma_sq)
((100, 4), 25.0, 36.0)
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp


class SEASequence(NamedTuple):
  """Linear losses ``<theta_t, x>`` with their means and the SEA quantities of the sequence."""

  theta: jax.Array     # (T, d): the realised gradients
  mean: jax.Array      # (T, d): m_t = grad F_t
  sigma_sq: jax.Array  # sum_t E||theta_t - m_t||^2
  Sigma_sq: jax.Array  # sum_{t>=2} ||m_t - m_{t-1}||^2


def sea_linear(key: jax.Array, rounds: int, dim: int, *, noise: float = 0.0, switch_every: int = 0,
               scale: float = 1.0) -> SEASequence:
  """Linear SEA losses: an adversarial mean flipping sign every ``switch_every`` rounds, plus Gaussian noise.

  Args:
    key: PRNG key (the direction ``u`` and the noise).
    rounds: T.
    dim: d.
    noise: the noise's root-mean-square norm (``E||theta_t - m_t||^2 = noise^2``).
    switch_every: the period of the sign flips (0: never; 1: every round, the most adversarial).
    scale: ``||m_t||``.

  Returns:
    A :class:`SEASequence`.
  """
  if rounds < 1 or dim < 1 or switch_every < 0 or noise < 0 or scale < 0:
    raise ValueError(f'sea_linear: need rounds, dim >= 1 and switch_every, noise, scale >= 0; got rounds={rounds}, '
                     f'dim={dim}, switch_every={switch_every}, noise={noise}, scale={scale}')
  return _draw(key, noise, scale, rounds=rounds, dim=dim, switch_every=switch_every)


@functools.partial(jax.jit, static_argnames=('rounds', 'dim', 'switch_every'))
def _draw(key, noise, scale, *, rounds, dim, switch_every):
  k_dir, k_noise = jax.random.split(key)
  u = jax.random.normal(k_dir, (dim,))
  u = u / jnp.linalg.norm(u)
  t = jnp.arange(rounds)
  sign = (1.0 - 2.0 * ((t // switch_every) % 2)) if switch_every else jnp.ones(rounds)
  mean = scale * sign[:, None] * u[None, :]
  theta = mean + noise * jax.random.normal(k_noise, (rounds, dim)) / jnp.sqrt(dim)
  flips = jnp.sum(sign[1:] != sign[:-1])
  return SEASequence(theta, mean, jnp.asarray(rounds * noise ** 2), 4.0 * scale ** 2 * flips)
