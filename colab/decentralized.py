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
# # Decentralized learning without a server
#
# Every worker holds its own model and talks only to its neighbours on a graph. Each method below is an optax
# transform written once per worker on a named axis (`decentral.axis.run` maps it over n workers by `vmap`,
# `shard_map` or `pmap`). Small problems, so it runs on a CPU in seconds; the digits experiments are
# `python -m experiments.decentralized --config.experiment=<name>`.

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
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

import decentral
from decentral import axis

N = 8
targets = 3.0 * jax.random.normal(jax.random.key(0), (N, 4))  # worker i's optimum: heterogeneous data


def trajectory(tx, steps, x0=None):
  """Every worker minimises sum log cosh(x - b_i); returns the models after every step, (N, steps, 4)."""

  def worker(b, x):
    loss_fn = lambda y: jnp.sum(jnp.log(jnp.cosh(y - b)))

    def body(carry, _):
      x, state = carry
      u, state = tx.update(jax.grad(loss_fn)(x), state, x, loss_fn=loss_fn)
      x = optax.apply_updates(x, u)
      return (x, state), x

    return jax.lax.scan(body, (x, tx.init(x)), None, length=steps)[1]

  return axis.run(worker, N)(targets, jnp.zeros((N, 4)) if x0 is None else x0)


def consensus(xs):
  """(1/n) sum_i |x_i - xbar|^2 after every step."""
  return ((xs - xs.mean(0)) ** 2).sum(-1).mean(0)

# %% [markdown]
# ## DFedSAM and DFedSAM-MGS (arXiv 2302.04083)
#
# K local steps of sharpness-aware minimization, then Q gossip steps per round (`decentral.dfedsam`). More gossip
# steps per round mix the local models as if the graph were better connected (W^Q): the consensus distance at the
# end of each round falls with Q, at Q times the bytes. With `rho=0`, Q = 1 and K = 1 it is D-SGD.

# %%
ring = decentral.ring(N)
fig, ax = plt.subplots(figsize=(5, 3))
for q in (1, 4):
  tx = decentral.dfedsam(0.1, ring, rho=0.05, local_steps=5, gossip_steps=q, axis_name='workers')
  ax.plot(consensus(trajectory(tx, 100))[4::5], label=f'Q = {q}')
ax.set(xlabel='round', ylabel='consensus distance', yscale='log', title='DFedSAM-MGS on a ring of 8')
ax.legend();

# %% [markdown]
# ## A single global merge (arXiv 2507.06542)
#
# Local SGD with no gossip at all, and one exact average of all models at the last step
# (`decentral.single_merge_dsgd(..., gossip_every=0, merge_at=T)`). The local models disagree until the end; the
# merged model's global objective is compared with the local models' and with centralised gradient descent's (a
# server every step). On this convex problem the merge gets most of the way; the digits experiment measures it on
# an MLP against FedAvg.

# %%
T = 60
tx = decentral.single_merge_dsgd(0.1, None, axis_name='workers', merge_at=T, gossip_every=0)
xs = trajectory(tx, T)
objective = lambda x: float(jnp.log(jnp.cosh(x - targets)).sum(-1).mean())
central = jnp.zeros(4)
for _ in range(T):
  central = central - 0.1 * jnp.tanh(central - targets).mean(0)
print('consensus distance just before the merge:', round(float(consensus(xs)[-2]), 2))
print('global objective, local models (mean)   :', round(np.mean([objective(x) for x in xs[:, -2]]), 3))
print('global objective, merged model          :', round(objective(xs[0, -1]), 3))
print('global objective, centralised GD        :', round(objective(central), 3))

# %% [markdown]
# ## Variance-corrected averaging (arXiv 2404.04616)
#
# Averaging k models from independent initialisations divides each layer's weight variance by about k; the
# correction (`decentral.variance_corrected_mean`) rescales each averaged layer about its mean to the inputs'
# spread. `decentral.variance_corrected_dsgd` does it inside gossip.

# %%
ks = [1, 2, 4, 8, 16, 32]
plain, fixed = [], []
for k in ks:
  layers = jax.random.normal(jax.random.key(k), (k, 64, 64)) / 8.0  # k uncorrelated Xavier-like layers
  plain.append(float(jnp.var(layers.mean(0)) / jnp.var(layers)))
  fixed.append(float(jnp.var(decentral.variance_corrected_mean(layers)) / jnp.var(layers)))
fig, ax = plt.subplots(figsize=(5, 3))
ax.loglog(ks, plain, 'o-', label='plain average')
ax.loglog(ks, fixed, 's-', label='variance-corrected')
ax.loglog(ks, [1 / k for k in ks], 'k:', label='1/k')
ax.set(xlabel='models averaged k', ylabel='variance / input variance')
ax.legend();

# %% [markdown]
# ## Disrupted P2P (arXiv 2310.02986)
#
# At a chosen round a Barabasi-Albert graph loses its two best-connected nodes, or the same share of its links;
# survivors renormalise their rows over the neighbours they still hear (`decentral.after_failure`,
# `decentral.disrupted_dsgd`). Here: pure gossip of each worker's value after the failure at step 10, and how far
# the survivors stay from agreeing.

# %%
n = 16
ba = decentral.barabasi_albert(n, 2, seed=0)
adj = np.asarray(ba.mixing) > 0
np.fill_diagonal(adj, False)
hubs = np.argsort(-adj.sum(1))[:2].tolist()
edges = [(i, j) for i in range(n) for j in range(i + 1, n) if adj[i, j]]
links = [edges[i] for i in np.random.default_rng(0).choice(len(edges), 6, replace=False)]
values = jnp.arange(n, dtype=jnp.float32)[:, None]
fig, ax = plt.subplots(figsize=(5, 3))
for label, nodes, cut in (('nothing lost', [], []), ('2 hubs lost', hubs, []), (f'{len(links)} links cut', [], links)):
  tx = decentral.disrupted_gossip(ba, axis_name='workers', fail_round=10, failed_nodes=nodes, failed_links=cut)

  def worker(x):
    def body(carry, _):
      x, state = carry
      u, state = tx.update(jnp.zeros_like(x), state, x)
      return (x + u, state), x
    return jax.lax.scan(body, (x, tx.init(x)), None, length=40)[1]

  xs = np.asarray(axis.run(worker, n)(values))[:, :, 0]
  alive = np.setdiff1d(np.arange(n), nodes)
  ax.semilogy(xs[alive].std(0) + 1e-12, label=label)
ax.axvline(10, color='grey', ls=':')
ax.set(xlabel='gossip step', ylabel="spread of the survivors' values")
ax.legend();

# %% [markdown]
# ## More methods

# %% [markdown]
# ### Token SGD on a self-repellent random walk (SA-SRRW, arXiv 2401.09665)
# One token visits the agents; the walk avoids over-visited agents with strength alpha (alpha = 0 is the base
# Metropolis-Hastings walk). The error of the iterates, scaled by the step size, falls with alpha.

# %%
adj = np.asarray(decentral.erdos_renyi(12, 0.3, seed=1).mixing > 0)
walk = decentral.metropolis_hastings_walk(adj)
centres = jnp.asarray(targets[:, 0].tolist() + [0.0] * 4)  # agent i's loss (theta - c_i)^2 / 2


def scaled_error(alpha, steps=2000, replicas=16):
  one = lambda k: decentral.sa_srrw(lambda th, i, _: th - centres[i], 0.0, walk, alpha=alpha, num_steps=steps,
                                    seed=k)[0]
  thetas = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(0), replicas))
  return float(jnp.mean((thetas - centres.mean()) ** 2) * (steps + 1) ** 0.9)


print({alpha: round(scaled_error(alpha), 3) for alpha in (0.0, 10.0)})

# %% [markdown]
# ### DIMAT: merge after permutation alignment (arXiv 2404.08079)
# A model and a copy with its hidden units shuffled compute the same function; averaging them naively does not,
# averaging after activation matching (one linear assignment per layer) does.

# %%
rng = np.random.default_rng(0)
mlp = [{'kernel': rng.normal(size=(4, 16)), 'bias': rng.normal(size=16)},
       {'kernel': rng.normal(size=(16, 3)), 'bias': rng.normal(size=3)}]
twin = decentral.permute_mlp(mlp, [rng.permutation(16)])
x = rng.normal(size=(100, 4))
for align in (False, True):
  merged = decentral.dimat_merge([mlp, twin], np.full((2, 2), 0.5), [x, x], align=align)[0]
  gap = np.abs(decentral.p2p.mlp_apply(merged, x) - decentral.p2p.mlp_apply(mlp, x)).max()
  print(f'aligned={align}: max output change {gap:.2e}')

# %% [markdown]
# The same merge on the worker axis (`decentral.dimat_dsgd`, here with a zero step): each worker receives the
# other's model and solves the assignment inside its jitted step (an exact Hungarian method in JAX).

# %%
tx = decentral.dimat_dsgd(0.0, decentral.complete(2), axis_name='workers', spec=decentral.p2p.mlp_spec(2),
                          activations=decentral.p2p.mlp_activations())


def merge_step(params, batch):
  updates, _ = tx.update(jax.tree.map(jnp.zeros_like, params), tx.init(params), params, batch=batch)
  return jax.tree.map(jnp.add, params, updates)


models = jax.tree.map(lambda a, b: jnp.stack([a, b]).astype(jnp.float32), mlp, twin)
merged = decentral.axis.run(merge_step, 2, in_axes=(0, None))(models, jnp.asarray(x, jnp.float32))
worker0 = jax.tree.map(lambda leaf: np.asarray(leaf[0], np.float64), merged)
gap = np.abs(decentral.p2p.mlp_apply(worker0, x) - decentral.p2p.mlp_apply(mlp, x)).max()
print(f'worker axis, float32: max output change {gap:.2e}')

# %% [markdown]
# ### SybilWall: gossip exposes a Sybil region (arXiv 2306.15044)
# Four Sybils push one direction; one of them is node 0's neighbour. Judged only among node 0's neighbours it
# looks honest; once gossip brings the other Sybils' updates, FoolsGold's similarity weights drop it to zero.

# %%
honest, sybils = 8, 4
g = np.zeros((12, 12), bool)
for i in range(honest):
  g[i, (i + 1) % honest] = g[(i + 1) % honest, i] = True
g[honest:, honest:] = ~np.eye(sybils, dtype=bool)
g[0, honest] = g[honest, 0] = True
push = rng.normal(size=16)
for p in (0.0, 0.5):
  state = decentral.sybil_gossip_init(12, 16, seed=2)
  for _ in range(6):
    u = rng.normal(size=(12, 16))
    u[honest:] = push + 0.05 * rng.normal(size=(sybils, 16))
    state = decentral.sybil_gossip_step(state, jnp.asarray(u, jnp.float32), g, forward_prob=p)
  print(f'forwarding p={p}: node 0 weighs its Sybil neighbour {float(decentral.p2p.sybil_weights(state, g)[0, 8]):.2f}')
