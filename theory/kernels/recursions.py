"""Infinite-width NNGP kernel and NTK of an MLP, a 1-D CNN and a simple RNN by the tensor-program recursions.

NTK parametrization throughout: every weight is ``N(0, 1)`` times ``sigma / sqrt(fan_in)``, every bias
``N(0, 1)`` times ``sigma_b`` (neural-tangents' default ``parameterization='ntk'``; its ``W_std`` is our
``sigma_w``, not its square). ``V`` and ``Vdot`` are the duals of :mod:`theory.kernels.expectations`, applied
entrywise (their variances from the diagonal). Each function takes a batch of ``N`` inputs and returns the
``N x N`` matrices ``{'nngp', 'ntk'}`` of the scalar output.

MLP (``depth`` hidden layers of width ``n``, then ``Dense(1)``)::

    Sigma^1 = sigma_w^2 x x'^T / d + sigma_b^2,       Theta^1 = Sigma^1
    Sigma^{l+1} = sigma_w^2 V(Sigma^l) + sigma_b^2,   Theta^{l+1} = Sigma^{l+1} + sigma_w^2 Vdot(Sigma^l) * Theta^l

CNN (1-D, ``depth`` convolutions with filter size ``k`` (odd), stride 1, circular padding, ``n`` channels; then
global average pooling or flatten, then ``Dense(1)``): the same recursion on pixel-pair matrices
``Sigma_{(x, a), (x', a')}``, where a convolution averages over the window ``b``,
``A(K)_{a a'} = (1/k) sum_b K_{a+b, a'+b}``::

    Sigma^1 = sigma_w^2 A(x x'^T / C) + sigma_b^2,       Sigma^{l+1} = sigma_w^2 A(V(Sigma^l)) + sigma_b^2
    Theta^{l+1} = Sigma^{l+1} + sigma_w^2 A(Vdot(Sigma^l) * Theta^l)

and the readout averages over all pixel pairs (``'gap'``) or over the diagonal ``a = a'`` only (``'flatten'``);
the two give different kernels (Novak et al. 2019, arXiv 1810.05148).

RNN (``s^t = phi(h^t)``, ``h^t = sigma_w W s^{t-1} / sqrt(n) + sigma_u U x^t / sqrt(d) + sigma_b b``,
``s^0 = 0``, output ``f = sigma_v v . s^T / sqrt(n)`` at the last of ``T`` steps): the time-pair covariance
(Yang 2019, GP4A ``RNNtheory``)::

    P^{t,t'} = sigma_w^2 V(P)^{t-1,t'-1} + sigma_u^2 x^t . x'^{t'} / d + sigma_b^2     (the first term 0 at t = 1)
    NNGP = sigma_v^2 V(P)^{T,T}
    NTK  = NNGP + sum_t G^{t,t} * P^{t,t},  G^{T,T} = sigma_v^2 Vdot(P)^{T,T},
                                            G^{t,t} = sigma_w^2 Vdot(P)^{t,t} G^{t+1,t+1}

The backward covariances ``G`` pair only steps at the same distance from the output: ``W^T`` appears once per
step in back-propagation and, treating it as independent of ``W`` (the gradient-independence assumption, which
the paper's abstract says holds under conditions it states; here the readout ``v`` is zero-mean and used only at
the output), the cross terms vanish. This is the recurrent NTK of Alemohammad et al. (arXiv 2006.10246) for
sequences of equal length; finite RNNs with tied weights approach it (``width_sweep('rnn_erf')``).

Greg Yang, "Scaling Limits of Wide Neural Networks with Weight Sharing: Gaussian Process Behavior, Gradient
Independence, and Neural Tangent Kernel Derivation", arXiv 1902.04760.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from theory.kernels.expectations import check_activation, dual_matrix

READOUTS = ('gap', 'flatten')


def _check(name: str, activation: str, depth: int, **positive) -> None:
  check_activation(activation, f'theory.kernels.{name}')
  if depth < 1:
    raise ValueError(f'theory.kernels.{name}: depth must be >= 1, got {depth}')
  for arg, value in positive.items():
    if not value >= 0:
      raise ValueError(f'theory.kernels.{name}: {arg} must be >= 0, got {value}')


def mlp_kernels(x: jax.Array, *, depth: int = 2, activation: str = 'relu', sigma_w: float = 1.5,
                sigma_b: float = 0.1) -> dict[str, jax.Array]:
  """NNGP and NTK of a ``depth``-hidden-layer MLP on the rows of ``x`` (``N x d``); see the module docstring.

  Example:
    >>> import jax.numpy as jnp
    >>> k = mlp_kernels(jnp.eye(2), depth=1, sigma_w=1.0, sigma_b=0.0)
    >>> [round(float(v), 4) for v in k['nngp'][0]]   # (1/2) (1/d) for equal, (1/2pi)(1/d) for orthogonal x
    [0.25, 0.0796]
  """
  _check('mlp_kernels', activation, depth, sigma_w=sigma_w, sigma_b=sigma_b)
  sigma = sigma_w ** 2 * x @ x.T / x.shape[1] + sigma_b ** 2
  theta = sigma
  for _ in range(depth):
    v, vdot = dual_matrix(activation, sigma)
    sigma_next = sigma_w ** 2 * v + sigma_b ** 2
    theta = sigma_next + sigma_w ** 2 * vdot * theta
    sigma = sigma_next
  return {'nngp': sigma, 'ntk': theta}


def _window_average(m: jax.Array, k: int) -> jax.Array:
  """``(1/k) sum_b m[:, a+b, :, a'+b]`` over ``b`` in ``-(k-1)/2 .. (k-1)/2`` (circular)."""
  half = (k - 1) // 2
  return sum(jnp.roll(m, shift=(-b, -b), axis=(1, 3)) for b in range(-half, half + 1)) / k


def cnn_kernels(x: jax.Array, *, depth: int = 2, filter_size: int = 3, readout: str = 'gap',
                activation: str = 'relu', sigma_w: float = 1.5, sigma_b: float = 0.1) -> dict[str, jax.Array]:
  """NNGP and NTK of a 1-D CNN on ``x`` (``N x L x C``: ``L`` pixels, ``C`` channels); see the module docstring.

  Args:
    x: inputs, ``N x L x C``.
    depth: number of convolution + activation layers.
    filter_size: odd filter width ``k`` (stride 1, circular padding).
    readout: ``'gap'`` (global average pooling) or ``'flatten'``, each followed by ``Dense(1)``.
    activation: ``'relu'`` or ``'erf'``.
    sigma_w: weight scale (NTK parametrization, fan-in ``k C``; ``L n`` for the flatten readout).
    sigma_b: bias scale.
  """
  _check('cnn_kernels', activation, depth, sigma_w=sigma_w, sigma_b=sigma_b)
  if filter_size < 1 or filter_size % 2 == 0:
    raise ValueError(f'theory.kernels.cnn_kernels: filter_size must be odd and >= 1, got {filter_size}')
  if readout not in READOUTS:
    raise ValueError(f'theory.kernels.cnn_kernels: readout must be one of {READOUTS}, got {readout!r}')
  n, length, channels = x.shape
  flat = lambda m: m.reshape(n * length, n * length)
  pairs = lambda m: m.reshape(n, length, n, length)
  gram = jnp.einsum('iac,jbc->iajb', x, x) / channels
  sigma = sigma_w ** 2 * _window_average(gram, filter_size) + sigma_b ** 2
  theta = sigma
  for _ in range(depth - 1):
    v, vdot = (pairs(m) for m in dual_matrix(activation, flat(sigma)))
    sigma_next = sigma_w ** 2 * _window_average(v, filter_size) + sigma_b ** 2
    theta = sigma_next + sigma_w ** 2 * _window_average(vdot * theta, filter_size)
    sigma = sigma_next
  v, vdot = (pairs(m) for m in dual_matrix(activation, flat(sigma)))
  if readout == 'gap':
    pool = lambda m: m.mean(axis=(1, 3))
  else:
    pool = lambda m: jnp.einsum('iaja->ij', m) / length
  nngp = sigma_w ** 2 * pool(v) + sigma_b ** 2
  return {'nngp': nngp, 'ntk': nngp + sigma_w ** 2 * pool(vdot * theta)}


def rnn_kernels(x: jax.Array, *, activation: str = 'erf', sigma_w: float = 1.0, sigma_u: float = 1.0,
                sigma_b: float = 0.1, sigma_v: float = 1.0) -> dict[str, jax.Array]:
  """NNGP and NTK of a simple RNN read out at the last step, on ``x`` (``N x T x d``); see the module docstring."""
  _check('rnn_kernels', activation, 1, sigma_w=sigma_w, sigma_u=sigma_u, sigma_b=sigma_b, sigma_v=sigma_v)
  n, steps, dim = x.shape
  flat = lambda m: m.reshape(n * steps, n * steps)
  pairs = lambda m: m.reshape(n, steps, n, steps)
  drive = sigma_u ** 2 * jnp.einsum('isc,jtc->isjt', x, x) / dim + sigma_b ** 2
  p = drive
  for _ in range(steps - 1):  # P^{t,t'} needs V(P)^{t-1,t'-1}: after T - 1 sweeps every pair is final
    v, _ = dual_matrix(activation, flat(p))
    shifted = jnp.pad(pairs(v)[:, :-1, :, :-1], ((0, 0), (1, 0), (0, 0), (1, 0)))
    p = sigma_w ** 2 * shifted + drive
  v, vdot = (pairs(m) for m in dual_matrix(activation, flat(p)))
  diag_p = jnp.einsum('isjs->sij', p)  # P^{t,t} over input pairs
  diag_vdot = jnp.einsum('isjs->sij', vdot)
  g = sigma_v ** 2 * diag_vdot[-1]
  ntk_terms = g * diag_p[-1]
  for t in range(steps - 2, -1, -1):
    g = sigma_w ** 2 * diag_vdot[t] * g
    ntk_terms = ntk_terms + g * diag_p[t]
  nngp = sigma_v ** 2 * v[:, -1, :, -1]
  return {'nngp': nngp, 'ntk': nngp + ntk_terms}
