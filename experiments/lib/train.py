"""Training one registered optimizer with orbax checkpoints and exact resume (library code of experiments/train.py).

A run that stops anywhere -- at a checkpoint (``stop_after``) or between two (a crash) -- and is rerun with the
same workdir restores the latest checkpoint, replays the steps after it and ends with the same parameters, bit
for bit, as an uninterrupted run: the batch and the oracle key of step t are pure functions of (seed, t), and the
metric rows logged after the restored checkpoint are dropped before they are logged again.
"""

from __future__ import annotations

import os

import jax
import numpy as np
import orbax.checkpoint as ocp

from experiments.lib.common import results, training
from optim import registry

CLAIMS = ()  # a training script, not a reproduction


def _optimizer(config):
  hparams = {k: v for k, v in config.optimizer.items() if k != 'name'}
  entry = registry.get(config.optimizer.name)
  return entry, entry.build(**hparams)


def run(config, workdir: str) -> dict:
  """Trains ``config.optimizer`` on the configured problem, resuming from the latest checkpoint in ``workdir``.

  Returns the final parameters, the step reached, the last logged loss and (at the end) the test accuracy.
  """
  workdir = os.path.abspath(workdir)
  problem = training.make_problem(config.data_dir or None, config.model, config.seed)
  entry, tx = _optimizer(config)
  state = {'params': problem.params, 'opt_state': tx.init(problem.params)}
  manager = ocp.CheckpointManager(os.path.join(workdir, 'checkpoints'),
                                  options=ocp.CheckpointManagerOptions(max_to_keep=2))
  start = manager.latest_step() or 0
  if start:
    state = manager.restore(start, args=ocp.args.StandardRestore(jax.eval_shape(lambda: state)))
    print(f'resumed from step {start}', flush=True)
  writer = results.Writer(workdir, config, resume_step=start)
  step = training.make_step(problem.model, entry, tx)
  end = config.steps if config.stop_after < 0 else min(config.steps, config.stop_after)
  progress = training.Progress(config.steps, config.log_every, start, prefix=f'[{config.optimizer.name}] ')
  params, opt_state, loss = state['params'], state['opt_state'], float('nan')
  try:
    for t in range(start, end):
      x, y = training.batch(problem.dataset, config.batch_size, t, config.seed)
      params, opt_state, loss = step(params, opt_state, x, y, training.oracle_key(config.seed, t))
      done = t + 1
      if done % config.log_every == 0 or done == end:
        loss = float(loss)
        progress(done, loss)
        writer.metrics([{'step': done, 'loss': loss}])
      if done % config.checkpoint_every == 0 or done == end:
        manager.save(done, args=ocp.args.StandardSave({'params': params, 'opt_state': opt_state}))
  finally:  # an exception still lets the checkpoints in flight finish
    manager.close()
  result = {'params': params, 'step': max(start, end), 'loss': float(loss)}
  if end == config.steps:
    ds = problem.dataset
    result['test_accuracy'] = training.accuracy(problem.model, params, ds.x_test, ds.y_test)
    if start < end:  # a rerun of a finished run logs nothing twice
      writer.metrics([{'step': end, 'test_accuracy': result['test_accuracy']}])
    writer.results({k: v for k, v in result.items() if k != 'params'})
  return result


def table(result: dict) -> str:
  if 'test_accuracy' not in result:
    return f'stopped at step {result["step"]}, loss {result["loss"]:.4f} (rerun with the same workdir to resume)'
  return f'step {result["step"]}: loss {result["loss"]:.4f}, test accuracy {result["test_accuracy"]:.4f}'


def params_equal(a, b) -> bool:
  return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
