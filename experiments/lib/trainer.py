"""Training with checkpoints and exact resume (library code of experiments/train.py)."""

from __future__ import annotations

import os

import jax
import numpy as np
import orbax.checkpoint as ocp

from experiments.lib import training
from optim import registry


def _optimizer(config):
  hparams = {k: v for k, v in config.optimizer.items() if k != 'name'}
  entry = registry.get(config.optimizer.name)
  return entry, entry.build(**hparams)


def train(config, workdir: str) -> dict:
  """Trains ``config.optimizer`` on the configured problem, resuming from the latest checkpoint in ``workdir``.

  Returns the final parameters, test accuracy and last loss. A run stopped at step k (``stop_after``) and rerun
  with the same workdir ends with the same parameters, bit for bit, as an uninterrupted run.
  """
  workdir = os.path.abspath(workdir)
  training.write_config(workdir, config)
  problem = training.make_problem(config.data_dir or None, config.model, config.seed)
  entry, tx = _optimizer(config)
  state = {'params': problem.params, 'opt_state': tx.init(problem.params)}
  manager = ocp.CheckpointManager(os.path.join(workdir, 'checkpoints'),
                                  options=ocp.CheckpointManagerOptions(max_to_keep=2))
  start = manager.latest_step() or 0
  if start:
    state = manager.restore(start, args=ocp.args.StandardRestore(jax.eval_shape(lambda: state)))
    print(f'resumed from step {start}', flush=True)
  step = training.make_step(problem.model, entry, tx)
  end = config.steps if config.stop_after < 0 else min(config.steps, config.stop_after)
  progress = training.Progress(config.steps, config.log_every, start, prefix=f'[{config.optimizer.name}] ')
  params, opt_state, loss, rows = state['params'], state['opt_state'], float('nan'), []
  metrics = os.path.join(workdir, 'metrics.jsonl')
  for t in range(start, end):
    x, y = training.batch(problem.dataset, config.batch_size, t, config.seed)
    params, opt_state, loss = step(params, opt_state, x, y, training.oracle_key(config.seed, t))
    done = t + 1
    if done % config.log_every == 0 or done == end:
      loss = float(loss)
      progress(done, loss)
      training.append_jsonl(metrics, [{'step': done, 'loss': loss}])
    if done % config.checkpoint_every == 0 or done == end:
      manager.save(done, args=ocp.args.StandardSave({'params': params, 'opt_state': opt_state}))
  manager.wait_until_finished()
  result = {'params': params, 'step': end, 'loss': float(loss)}
  if end == config.steps:
    ds = problem.dataset
    result['test_accuracy'] = training.accuracy(problem.model, params, ds.x_test, ds.y_test)
    training.append_jsonl(metrics, [{'step': end, 'test_accuracy': result['test_accuracy']}])
    print(f'test accuracy {result["test_accuracy"]:.4f}', flush=True)
  return result


def params_equal(a, b) -> bool:
  return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
