# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Federated learning on the worker axis
#
# Clients with their own non-IID data, a few sampled each round, any optax optimizer for the local steps, a server
# optimizer on the averaged update, and the bytes each round costs: `decentral.federated`. The sampled clients
# train in lock-step on the worker axis (`vmap` here; `shard_map`/`pmap` on devices give the same numbers).
# Runs on a CPU in seconds.

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
import numpy as np
import optax

from decentral import ledger, registry
from decentral.federated import partitions, rounds, sampling
from experiments.lib.federated import common

print('federated algorithms:', ', '.join(registry.federated.names()))

# %% [markdown]
# ## Clients: digits split by a Dirichlet(0.1) over labels
#
# Small alpha puts each class on a few clients; some clients get nothing at all (they may be sampled, take no
# step and carry weight 0). `pad` stacks every client's rows to one array, masked by the counts, so clients of
# unequal sizes share one compilation.

# %%
problem = common.image_problem(num_clients=30, alpha=0.1, hidden=64, seed=0)
labels = np.asarray(problem.data.arrays['y'])
counts = problem.data.counts
hist = np.stack([np.bincount(labels[i, :counts[i]], minlength=10) for i in range(len(counts))])
plt.figure(figsize=(8, 2.5))
plt.imshow(hist.T, aspect='auto', cmap='viridis')
plt.xlabel('client')
plt.ylabel('class')
plt.title(f'examples per class and client (sizes {counts.min()} to {counts.max()})')
plt.colorbar()
plt.show()

# %% [markdown]
# ## Three methods, the same clients and local steps
#
# FedAvg (server SGD with lr 1), FedAdam (Adam on the pseudo-gradient) and FedProx (a proximal term in each local
# step); 6 of 30 clients a round, 5 local SGD steps of batch 16. `rounds.record` adds each round's uplink and
# downlink to a `Ledger`.

# %%
local = rounds.Local(optax.sgd(0.05), steps=5, batch_size=16)
curves = {}
for name, kwargs in [('fedavg', {}), ('fedadam', {'learning_rate': 0.01}), ('fedprox', {'mu': 0.1})]:
  fed = rounds.Federated(problem.loss_fn, problem.data, local=local, sampler=sampling.uniform(30, 6),
                         algorithm=registry.federated.build(name, **kwargs))
  state, led, curve = fed.init(problem.params, jax.random.key(0)), ledger.Ledger(30), []
  for t in range(1, 61):
    state, metrics = fed.round(state)
    rounds.record(led, t, metrics)
    if t % 5 == 0:
      curve.append((led.total / 1e6, common.accuracy(problem, state.params)))
  curves[name] = curve
  print(f'{name:8s} test accuracy {curve[-1][1]:.3f} after 60 rounds, {led.total / 1e6:.2f} MB up')

for name, curve in curves.items():
  plt.plot(*zip(*curve), label=name)
plt.xlabel('MB sent by the clients')
plt.ylabel('test accuracy')
plt.legend()
plt.show()

# %% [markdown]
# ## Writing an algorithm
#
# An algorithm is a `rounds.Algorithm` of hooks, each defaulting to FedAvg's. FedProx replaces only the local
# gradient; FedStale/FedVARP keep a per-client table of stale updates and replace the aggregation; FedAMD replaces
# the client procedure (anchors and miners). Here a client-side gradient clip in three lines:

# %%
def clipped(step, params, ctx):
  g = step.grad(params)
  norm = optax.global_norm(g)
  return jax.tree.map(lambda x: x * jax.numpy.minimum(1.0, 1.0 / (norm + 1e-12)), g)


fed = rounds.Federated(problem.loss_fn, problem.data, local=local, sampler=sampling.uniform(30, 6),
                       algorithm=rounds.Algorithm(name='fedavg_clip', local_gradient=clipped))
state = fed.init(problem.params, jax.random.key(0))
for _ in range(20):
  state, metrics = fed.round(state)
print('clipped-gradient FedAvg, 20 rounds: test accuracy', round(common.accuracy(problem, state.params), 3),
      '| clients of the last round', np.asarray(metrics.clients).tolist())
