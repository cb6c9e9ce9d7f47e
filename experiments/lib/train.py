"""Training one registered optimizer with orbax checkpoints and exact resume (library code of experiments/train.py).

A run that stops anywhere -- at a checkpoint (``stop_after``) or between two (a crash) -- and is rerun with the
same workdir restores the latest checkpoint, replays the steps after it and ends with the same parameters, bit
for bit, as an uninterrupted run: the batch and the oracle key of step t are pure functions of (seed, t), and the
metric rows logged after the restored checkpoint are dropped before they are logged again. A Ctrl-C (also while
an asynchronous checkpoint is being written) lets the save in flight finish and keeps the workdir resumable; a
rerun of a finished workdir says so and prints the stored results instead of evaluating again.

With ``config.privacy.noise_multiplier`` set the run is DP-SGD (experiments/lib/common/dp_training.py) and the
epsilon spent so far is on every progress line, every metrics row and in the final table.
"""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import orbax.checkpoint as ocp

from experiments.lib.common import progress as progress_lib
from experiments.lib.common import dp_training, results, training, usage
from optim import registry

CLAIMS = ()  # a training script, not a reproduction


def _optimizer(config):
  """The registry entry and the transform of ``config.optimizer``; a misspelt name or argument is a UsageError."""
  name = config.optimizer.name
  if name not in registry.names():
    raise usage.unknown('optimizer', name, registry.names())
  entry = registry.get(name)
  hparams = {k: v for k, v in config.optimizer.items() if k != 'name'}
  valid = registry.accepted(entry.factory) | set(entry.defaults)
  for k in hparams:
    if k not in valid:
      raise usage.unknown(f'hyperparameter of {name}', k, valid)
  return entry, entry.build(**hparams)


def _advance(config, problem, entry, tx):
  """``advance(params, opt_state, t) -> (params, opt_state, batch loss)``: step t, private or not."""
  if dp_training.enabled(config):
    return dp_training.make_advance(problem.model, problem.dataset, tx, config)
  step = training.make_step(problem.model, entry, tx)

  def advance(params, opt_state, t):
    x, y = training.batch(problem.dataset, config.batch_size, t, config.seed)
    return step(params, opt_state, x, y, training.oracle_key(config.seed, t))

  return advance


def _finished(workdir: str, steps: int, manager) -> dict | None:
  """The stored results of a run that already reached ``steps`` in ``workdir`` (None if it has not)."""
  path = os.path.join(workdir, 'results.json')
  if (manager.latest_step() or 0) < steps or not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def run(config, workdir: str) -> dict:
  """Trains ``config.optimizer`` on the configured problem, resuming from the latest checkpoint in ``workdir``.

  Returns the final parameters, the step reached, the last logged loss and (at the end) the test accuracy.
  """
  workdir = os.path.abspath(workdir)
  entry, tx = _optimizer(config)  # a misspelt argument fails before the workdir is touched
  problem = training.make_problem(config.data_dir or None, config.model, config.seed)
  private, num_examples = dp_training.enabled(config), len(problem.dataset.x_train)
  if private:  # a bad privacy setting fails here too, before the workdir is touched
    tx = dp_training.transform(config, entry, tx, num_examples)

  def spent(steps):  # the privacy field of a row: the epsilon spent by `steps` steps (none if not private)
    return {'epsilon': dp_training.epsilon(config, num_examples, steps)} if private else {}

  state = {'params': problem.params, 'opt_state': tx.init(problem.params)}
  manager = ocp.CheckpointManager(os.path.join(workdir, 'checkpoints'),
                                  options=ocp.CheckpointManagerOptions(max_to_keep=2))
  start = manager.latest_step() or 0
  if start:
    state = manager.restore(start, args=ocp.args.StandardRestore(jax.eval_shape(lambda: state)))
  finished = _finished(workdir, config.steps, manager)
  if finished is not None:
    manager.close()
    print(f'{workdir} already finished at step {start}: nothing to do (a new --workdir starts a new run)', flush=True)
    return {**finished, 'params': state['params'], 'finished_before': True}
  if start:
    print(f'resumed from step {start}', flush=True)
  writer = results.Writer(workdir, config, resume_step=start)
  advance = _advance(config, problem, entry, tx)
  end = config.steps if config.stop_after < 0 else min(config.steps, config.stop_after)
  progress = progress_lib.Progress(config.steps, f'[{config.optimizer.name}]', every=config.log_every, start=start,
                                   unit='step')
  params, opt_state, loss, done, saved = state['params'], state['opt_state'], float('nan'), start, start
  try:
    for t in range(start, end):
      params, opt_state, loss = advance(params, opt_state, t)
      done = t + 1
      if done % config.log_every == 0 or done == end:
        loss = float(loss)
        row = {'step': done, 'loss': loss, **spent(done)}
        progress(done, **{k: v for k, v in row.items() if k != 'step'})
        writer.metrics([row])
      elif done == start + 1:
        progress(done)  # starts the clock after the first (compiled) step
      if done % config.checkpoint_every == 0 or done == end:
        manager.save(done, args=ocp.args.StandardSave({'params': params, 'opt_state': opt_state}))
        saved = done
  except KeyboardInterrupt:
    print(f'interrupted at step {done}; rerun with the same --workdir to resume from the checkpoint of step {saved}',
          flush=True)
    raise
  finally:  # an exception (a Ctrl-C too) still lets the checkpoint in flight finish
    manager.close()
  result = {'params': params, 'step': max(start, end), 'loss': float(loss), **spent(max(start, end))}
  if private:
    result['delta'] = config.privacy.delta
  if end == config.steps:
    ds = problem.dataset
    result['train_loss'] = training.full_loss(problem.model, params, ds.x_train, ds.y_train)
    result['test_accuracy'] = training.accuracy(problem.model, params, ds.x_test, ds.y_test)
    if start < end:  # a rerun of a finished run logs nothing twice
      writer.metrics([{'step': end, 'train_loss': result['train_loss'], 'test_accuracy': result['test_accuracy'],
                       **spent(end)}])
    writer.results({k: v for k, v in result.items() if k != 'params'})
    if writer.active:
      writer.figure(plot(results.read_jsonl(writer.path('metrics.jsonl')), config), 'loss.png')
  return result


def plot(rows: list[dict], config):
  """The logged batch losses of the whole run (resumed or not), the final full-batch loss marked."""
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(6, 4))
  logged = [(r['step'], r['loss']) for r in rows if 'loss' in r and r['loss'] is not None]
  if logged:
    ax.plot(*zip(*logged), label='train loss on the batch')
  final = [r for r in rows if 'train_loss' in r]
  if final:
    ax.plot(final[-1]['step'], final[-1]['train_loss'], marker='*', markersize=12, linestyle='none',
            label=f'final full-batch train loss {final[-1]["train_loss"]:.4f}')
  ax.set(xlabel='step', ylabel='cross-entropy (log scale)', yscale='log',
         title=f'{config.optimizer.name}, {config.model} on {config.data_dir or "digits"}, batch {config.batch_size}')
  ax.legend(fontsize=8)
  return fig


def table(result: dict) -> str:
  spent = f', epsilon {result["epsilon"]:.4g} at delta {result["delta"]:g}' if 'epsilon' in result else ''
  if 'test_accuracy' not in result:
    return (f'stopped at step {result["step"]}, batch loss {result["loss"]:.4f}{spent} '
            '(rerun with the same workdir to resume)')
  loss = (f'train loss {result["train_loss"]:.4f} (full batch)' if 'train_loss' in result
          else f'batch loss {result["loss"]:.4f}')
  return f'step {result["step"]}: {loss}, test accuracy {result["test_accuracy"]:.4f}{spent}'



def params_equal(a, b) -> bool:
  return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
