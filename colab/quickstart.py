# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # polyak quickstart
#
# Compose two transforms from optax and polyak, train a small MLP on scikit-learn's bundled digits, and plot
# the learning curves. Runs on a CPU in seconds.

# %%
import sys

if 'google.colab' in sys.modules:  # Colab only: fetch the repository (notebooks import its experiments/)
  import os
  import subprocess
  subprocess.run(['git', 'clone', '-q', 'https://github.com/polyak-dev/polyak'], check=False)
  os.chdir('polyak')
  subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '-e', '.'], check=True)

# %%
import jax
import matplotlib.pyplot as plt
import optax

import optim
from experiments.lib.common import training

print('registered optimizers:', ', '.join(optim.registry.names()))

# %% [markdown]
# Every optimizer in polyak is an `optax.GradientTransformation`, so it chains with optax's own. Here the
# registered Adam is preceded by global-norm clipping.

# %%
problem = training.make_problem(model='mlp', seed=0)
clipped_adam = optax.chain(optax.clip_by_global_norm(1.0), optim.registry.build('adam', learning_rate=3e-3))


def fit(tx, entry_name, steps=200, batch_size=128):
  entry = optim.registry.get(entry_name)
  params = jax.tree.map(lambda x: x.copy(), problem.params)
  opt_state = tx.init(params)
  step = training.make_step(problem.model, entry, tx)
  losses = []
  for t in range(steps):
    x, y = training.batch(problem.dataset, batch_size, t, seed=0)
    params, opt_state, loss = step(params, opt_state, x, y, training.oracle_key(0, t))
    losses.append(float(loss))
  ds = problem.dataset
  return losses, training.accuracy(problem.model, params, ds.x_test, ds.y_test)


curves = {'sgd': fit(optim.registry.build('sgd'), 'sgd'), 'clip + adam': fit(clipped_adam, 'adam')}
for name, (_, acc) in curves.items():
  print(f'{name:>12s}: test accuracy {acc:.3f}')

# %%
fig, ax = plt.subplots(figsize=(6, 4))
for name, (losses, _) in curves.items():
  ax.plot(losses, label=name)
ax.set(xlabel='step', ylabel='train loss', yscale='log', title='digits MLP')
ax.legend()
plt.show()
