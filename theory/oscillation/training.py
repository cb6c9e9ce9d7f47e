"""Mini-batch SGD on the two-layer CNN for a whole grid of learning rates at once, with the quantities that show
oscillation (the residual on the strong-feature examples every step) and feature learning (alignments along the
weak and the strong feature)."""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from theory.numerics import float64
from theory.oscillation.model import cnn_output, feature_alignment, init_filters, loss


@functools.partial(jax.jit, static_argnames=('activation', 'kind', 'batch_size', 'num_steps', 'log_every'))
def _train(filters, x, y, strong, v, u, key, learning_rates, activation, kind, batch_size, num_steps, log_every):
  n = x.shape[0]
  weights = strong / jnp.maximum(jnp.sum(strong), 1.0)

  def record(w):
    out = cnn_output(w, x, activation)
    full = 0.5 * jnp.mean((out - y) ** 2) if kind == 'square' else jnp.mean(jnp.logaddexp(0.0, -y * out))
    return full, jnp.sum(weights * y * (out - y))

  def run(lr):
    def step(w, t):
      idx = jax.random.choice(jax.random.fold_in(key, t), n, (batch_size,), replace=False)
      g = jax.grad(loss)(w, x[idx], y[idx], activation, kind)
      return w - lr * g, record(w)

    def chunk(w, start):
      w, records = jax.lax.scan(step, w, start + jnp.arange(log_every))
      return w, (records, feature_alignment(w, v), feature_alignment(w, u))

    w, ((losses, residual), a_v, a_u) = jax.lax.scan(chunk, filters, jnp.arange(0, num_steps, log_every))
    return w, losses.reshape(-1), residual.reshape(-1), a_v, a_u

  return jax.vmap(run)(learning_rates)


@float64
def train_sgd(data: dict[str, np.ndarray], learning_rates: Sequence[float], *, steps: int = 2000,
              batch_size: int = 10, width: int = 20, init_std: float = 0.01, activation: str = 'relu2',
              kind: str = 'square', log_every: int = 50, seed: int = 0) -> dict[str, np.ndarray]:
  """SGD ``W <- W - eta grad L_B(W)`` (batch drawn without replacement each step) from one initialisation and one
  batch sequence for every ``eta`` (``vmap``), in float64.

  Args:
    data: a :func:`feature_noise_data` training set.
    learning_rates: the grid of ``eta``.
    steps: SGD steps (a multiple of ``log_every``).
    batch_size: ``B``.
    width: filters per class ``m``.
    init_std: initialisation scale.
    activation: see :data:`theory.oscillation.model.ACTIVATIONS`.
    kind: ``'square'`` or ``'logistic'``.
    log_every: steps between alignment records.
    seed: seed of the initialisation and the batches.

  Returns:
    ``{'filters': (L, 2, m, d)``, ``'loss': (L, steps)`` the full training loss before each step,
    ``'strong_residual': (L, steps)`` the mean of ``y (f - y)`` over the strong-feature examples before each step,
    ``'steps': (steps / log_every,)``, ``'align_weak'`` and ``'align_strong'`` ``(L, steps / log_every)`` (see
    :func:`feature_alignment`), ``'learning_rates': (L,)}``.
  """
  if steps % log_every:
    raise ValueError(f'train_sgd: steps={steps} must be a multiple of log_every={log_every}')
  x, y = jnp.asarray(data['x']), jnp.asarray(data['y'])
  filters = init_filters(seed, width, x.shape[2], init_std)
  lrs = jnp.asarray(learning_rates, jnp.float64)
  strong = jnp.asarray(data['strong'], jnp.float64)
  w, losses, residual, a_v, a_u = _train(filters, x, y, strong, jnp.asarray(data['v']), jnp.asarray(data['u']),
                                         jax.random.key(seed + 1), lrs, activation, kind, batch_size, steps,
                                         log_every)
  return {'filters': np.asarray(w), 'loss': np.asarray(losses), 'strong_residual': np.asarray(residual),
          'steps': np.arange(log_every, steps + 1, log_every), 'align_weak': np.asarray(a_v),
          'align_strong': np.asarray(a_u), 'learning_rates': np.asarray(lrs)}


def oscillation_index(strong_residual: np.ndarray, window: int = 500) -> np.ndarray:
  """Mean step-to-step swing ``|r_{t+1} - r_t|`` of the strong-feature residual ``r_t = mean y (f - y)`` over the
  last ``window`` steps: near 0 when SGD settles on the strong-feature examples, of the order of the residual
  itself when it keeps jumping across the minimum along the strong feature (the sign of ``r_t`` alternates).

  Example:
    >>> float(oscillation_index(np.array([0.1, -0.1, 0.1, -0.1]), window=3))
    0.2
  """
  tail = np.asarray(strong_residual)[..., -window - 1:]
  return np.mean(np.abs(np.diff(tail, axis=-1)), axis=-1)


@float64
def weak_only_accuracy(filters: np.ndarray, test: dict[str, np.ndarray], activation: str = 'relu2') -> np.ndarray:
  """Accuracy ``P(sign f(W, x) = y)`` on a weak-only test set, for filters stacked over a leading axis."""
  x, y = jnp.asarray(test['x']), jnp.asarray(test['y'])
  out = jax.vmap(lambda w: cnn_output(w, x, activation))(jnp.asarray(filters))
  return np.asarray(jnp.mean(jnp.sign(out) == y, axis=-1))
