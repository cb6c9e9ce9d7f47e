"""DP-SGD as a training mode of experiments/train.py: private batches, the privatised step, the epsilon spent.

With ``config.privacy.noise_multiplier`` set (0 allowed: clipping only), a training run is DP-SGD (Abadi et al.,
arXiv 1607.00133) with the chosen optimizer on top:

- step t's batch is drawn by ``config.privacy.sampling``: ``'poisson'`` (every example independently with
  probability q = batch_size / N; ``optim.privacy.poisson_batch`` gives a fixed-capacity index + mask, so the step
  compiles once whatever the batch size) or ``'shuffle'`` (a fresh permutation per epoch cut into batches of
  batch_size, ``optim.privacy.shuffled_batch``); both pure functions of (seed, t), so resume stays exact;
- per-example gradients come from ``optim.per_example_grads``, and ``optim.dp_sgd_aggregate`` (clip each to C, sum
  the present ones, add N(0, (sigma C)^2) once, divide by the expected batch size) is chained before the
  optimizer: ``optax.chain(dp_sgd_aggregate(...), optimizer)``;
- the epsilon spent after t steps is ``optim.privacy.epsilon(sigma, q, t, delta, sampling=...)``, the event of the
  sampling that was used. Poisson batches larger than the capacity (probability <= 1e-9 per step,
  ``optim.privacy.sampling.default_capacity``) are truncated: the ``'pld'`` accountant accounts for that exactly,
  the ``'rdp'`` one (the default) accounts for untruncated Poisson sampling.

Not covered by the accountant: the batch losses on the progress lines and the final full-batch loss and test
accuracy, which read the data without noise (monitoring, as in Opacus's examples).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.lib.common import usage
from optim import per_example_grads, privacy, registry
from optim.privacy import accounting, sampling

# Batch keys are fold_in(fold_in(key(seed), BATCH_STREAM), t), apart from the noise keys fold_in(key(seed), t).
BATCH_STREAM = 1 << 30

_poisson = jax.jit(sampling.poisson_batch, static_argnums=(1, 3))
_shuffled = jax.jit(sampling.shuffled_batch, static_argnums=(2, 3))


def enabled(config) -> bool:
  """Whether ``config`` asks for DP-SGD (``privacy.noise_multiplier`` set)."""
  return 'privacy' in config and config.privacy.noise_multiplier is not None


def rate(config, num_examples: int) -> float:
  """q = batch_size / N: the Poisson inclusion probability, or the shuffled batches' share of an epoch."""
  return config.batch_size / num_examples


def capacity(config, num_examples: int) -> int:
  """The fixed row count of a Poisson batch (its overflow probability <= 1e-9 per step)."""
  return sampling.default_capacity(num_examples, rate(config, num_examples))


def check(config, entry: registry.Entry, num_examples: int) -> None:
  """A UsageError (one line) for a privacy setting that cannot run, before anything is trained or written."""
  p = config.privacy
  if p.sampling not in accounting.SAMPLINGS:
    raise usage.unknown('privacy sampling', p.sampling, accounting.SAMPLINGS)
  if p.accountant not in accounting.ACCOUNTANTS:
    raise usage.unknown('privacy accountant', p.accountant, accounting.ACCOUNTANTS)
  if not 0 < p.delta < 1:
    raise usage.UsageError(f'privacy.delta must be in (0, 1), got {p.delta}')
  if not 0 < config.batch_size <= num_examples:
    raise usage.UsageError(f'privacy: batch_size must be in [1, {num_examples}] (the training set), '
                           f'got {config.batch_size}')
  if entry.extra_args is not None:  # its oracles (loss, Hessian probes) would read the batch without noise
    raise usage.UsageError(f'privacy: {entry.name} reads the batch beyond its gradient, which DP-SGD does not '
                           'privatise; choose an optimizer without oracles')


def transform(config, entry: registry.Entry, tx: optax.GradientTransformation,
              num_examples: int) -> optax.GradientTransformationExtraArgs:
  """``optax.chain(optim.dp_sgd_aggregate(C, sigma, seed, expected_batch_size=batch_size), tx)``, checked."""
  check(config, entry, num_examples)
  p = config.privacy
  try:
    aggregate = privacy.dp_sgd_aggregate(p.l2_norm_clip, p.noise_multiplier, config.seed,
                                         expected_batch_size=config.batch_size)
  except ValueError as e:
    raise usage.UsageError(f'privacy: {e}') from None
  return optax.chain(aggregate, tx)


def batch(config, num_examples: int, step: int) -> tuple[np.ndarray, np.ndarray | None]:
  """Step ``step``'s example indices and mask (None for shuffled batches, whose rows are all present)."""
  key = jax.random.fold_in(jax.random.key(config.seed), BATCH_STREAM)
  if config.privacy.sampling == 'shuffle':
    return np.asarray(_shuffled(key, step, num_examples, config.batch_size)), None
  b = _poisson(jax.random.fold_in(key, step), num_examples, rate(config, num_examples),
               capacity(config, num_examples))
  return np.asarray(b.indices), np.asarray(b.mask)


def make_advance(model, dataset, tx: optax.GradientTransformation, config) -> Callable:
  """``advance(params, opt_state, t) -> (params, opt_state, batch loss)``: DP-SGD step t of the run."""

  def example_loss(params, example):
    x, y = example
    return optax.softmax_cross_entropy_with_integer_labels(model.apply(params, x[None]), y[None])[0]

  def step(params, opt_state, x, y, mask):
    grads = per_example_grads(example_loss, params, (x, y))
    updates, opt_state = tx.update(grads, opt_state, params, **({} if mask is None else {'mask': mask}))
    losses = optax.softmax_cross_entropy_with_integer_labels(model.apply(params, x), y)
    loss = losses.mean() if mask is None else jnp.sum(losses * mask) / jnp.maximum(jnp.sum(mask), 1)
    return optax.apply_updates(params, updates), opt_state, loss

  step = jax.jit(step, donate_argnums=(0, 1))
  n = len(dataset.x_train)

  def advance(params, opt_state, t):
    idx, mask = batch(config, n, t)
    return step(params, opt_state, dataset.x_train[idx], dataset.y_train[idx], mask)

  return advance


def epsilon(config, num_examples: int, steps: int) -> float:
  """The epsilon spent by ``steps`` steps at ``privacy.delta``, by the accountant of the sampling used."""
  p = config.privacy
  truncation = {}
  if p.sampling == 'poisson' and p.accountant == 'pld':
    truncation = {'truncated_batch_size': capacity(config, num_examples), 'dataset_size': num_examples}
  return privacy.epsilon(p.noise_multiplier, rate(config, num_examples), steps, p.delta, accountant=p.accountant,
                         sampling=p.sampling, **truncation)
