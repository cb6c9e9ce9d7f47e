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
# # Loss against bytes: local SGD, compression and one-byte zeroth-order training
#
# Four workers train a softmax regression on scikit-learn's digits, each on its own quarter of the data. Every
# method is written once per worker on the named axis `'workers'` and run here with `vmap`
# (`decentral.axis.run`); each reports the exact bytes it sends per step in its state (`state.comm`,
# `decentral.ledger`). We plot the loss of the global model against the bytes one worker has sent:
#
# - synchronous data parallel (a dense float32 gradient every step), the reference;
# - DiLoCo (H inner Adam steps, outer Nesterov on the averaged pseudo-gradient): H times fewer bytes;
# - Streaming DiLoCo (2 fragments, overlap 1, FP4 E3M0 outer gradients): lower peak and 8x fewer bits;
# - SparseLoCo (top-k error feedback, 2-bit values) and EDiT (anomaly-filtered, norm-weighted, clipped);
# - EF21 with top-10% and DGC at 5% density (the model is tiny), compressing every step;
# - Just One Byte: shared-randomness SPSA, one byte per worker and perturbation (no gradients at all).
#
# Runs on a CPU in well under a minute.

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
from sklearn.datasets import load_digits

import decentral
from decentral import axis, compression, ledger
from decentral import local_sgd as ls

n, bs = 4, 32
digits = load_digits()
x = jnp.asarray(digits.data[:1280] / 16.0, jnp.float32).reshape(n, -1, 64)   # worker i: rows i*320..
y = jnp.asarray(digits.target[:1280]).reshape(n, -1)
params = {'w': jnp.zeros((64, 10)), 'b': jnp.zeros(10)}


def loss(p, xb, yb):
  return optax.softmax_cross_entropy_with_integer_labels(xb @ p['w'] + p['b'], yb).mean()


def full_loss(p):
  return loss(p, x.reshape(-1, 64), y.reshape(-1))


print(f'{ledger.dense_nbytes(params)} bytes per dense float32 message')

# %% [markdown]
# One runner for every method: a `lax.scan` over steps per worker, recording the loss of the global model
# (the anchor of a local-SGD method, else the worker's parameters) and the bytes sent in each step.


# %%
def run(tx, steps, zeroth_order=False, dense_bytes=None):
  def worker(p, xi, yi):
    def body(carry, t):
      p, s = carry
      lo = (t * bs) % xi.shape[0]
      xb, yb = jax.lax.dynamic_slice_in_dim(xi, lo, bs), jax.lax.dynamic_slice_in_dim(yi, lo, bs)
      if zeroth_order:
        u, s = tx.update(p, s, p, loss_fn=lambda q: loss(q, xb, yb))
      else:
        u, s = tx.update(jax.grad(loss)(p, xb, yb), s, p)
      p = optax.apply_updates(p, u)
      sent = dense_bytes if dense_bytes is not None else ledger.sent_bytes(s)
      global_p = s.anchor if hasattr(s, 'anchor') else p
      return (p, s), (full_loss(global_p), jnp.asarray(sent, jnp.int32))
    return jax.lax.scan(body, (p, tx.init(p)), jnp.arange(steps))[1]

  stacked = jax.tree.map(lambda v: jnp.broadcast_to(v, (n,) + v.shape), params)
  losses, sent = axis.run(worker, n)(stacked, x, y)
  return np.asarray(losses[0]), np.cumsum(np.asarray(sent[0])), int(np.max(sent[0]))


steps, adam = 200, optax.adam(0.05)
methods = {
    'data parallel': (optax.chain(decentral.aggregate(decentral.mean, axis_name='workers'), adam),
                      dict(dense_bytes=ledger.dense_nbytes(params))),
    'DiLoCo H=10': (ls.diloco(adam, sync_every=10), {}),
    'DiLoCo H=50': (ls.diloco(adam, sync_every=50), {}),
    'Streaming DiLoCo P=2 tau=1 FP4': (ls.streaming_diloco(adam, sync_every=10, num_fragments=2, overlap=1,
                                                           mixing=0.5), {}),
    'SparseLoCo H=10': (ls.sparseloco(adam, sync_every=10, k=64), {}),
    'EDiT H=10': (decentral.edit(adam, sync_every=10, warmup=5), {}),
    'EF21 top-10%': (optax.chain(decentral.ef21(compression.top_k(ratio=0.1), axis_name='workers'),
                                 optax.sgd(0.5)), {}),
    'DGC 5%': (decentral.dgc(0.5, density=0.05, axis_name='workers'), {}),
}
results = {name: run(tx, steps, **kw) for name, (tx, kw) in methods.items()}
results['Just One Byte (K=4)'] = run(
    decentral.just_one_byte(0.05, epsilon=1e-3, scale=0.05, num_perturbations=4), 2000, zeroth_order=True)

# %%
print(f'{"method":<32}{"final loss":>11}{"bytes/worker":>14}{"peak B/step":>13}')
for name, (losses, cum, peak) in results.items():
  print(f'{name:<32}{losses[-1]:>11.4f}{cum[-1]:>14,d}{peak:>13,d}')

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
for name, (losses, cum, _) in results.items():
  axes[0].plot(np.arange(1, len(losses) + 1), losses, label=name)
  axes[1].plot(np.maximum(cum, 1), losses, label=name)
axes[0].set(xlabel='step', ylabel='training loss of the global model', xscale='log')
axes[1].set(xlabel='bytes sent per worker', ylabel='training loss of the global model', xscale='log')
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# DiLoCo reaches the data-parallel loss with 1/H of its bytes; Streaming DiLoCo sends the same pseudo-gradients
# in FP4 and in halves, so its peak per step is ~16x lower; SparseLoCo sends ~10% of the entries at 2 bits.
# Just One Byte needs many more (cheap, gradient-free) steps but sends four bytes per step per worker.
# The experiment `python -m experiments.communication --config.experiment=diloco` runs the same comparison on a
# character transformer with tiny Shakespeare.
