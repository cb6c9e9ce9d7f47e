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
# # An attack breaks the mean; a robust rule holds
#
# Ten workers train a softmax regression on scikit-learn's digits; the last three are Byzantine. Every worker runs
# the same optax chain, written once per worker on the named axis `'workers'` and run here with `vmap`
# (`decentral.axis.run`; the same code runs under `shard_map` or `pmap`, one worker per device):
#
# ```python
# optax.chain(decentral.byzantine(attack, axis_name='workers', f=3),   # the last 3 send the attack
#             decentral.aggregate(rule, axis_name='workers', f=3),     # everyone aggregates all 10
#             optax.sgd(0.5))
# ```
#
# The attack is inner-product manipulation (Xie et al. 2020): the faulty workers send -4 times the honest mean,
# so the mean of all ten points uphill. The trimmed mean and nearest-neighbour mixing + trimmed mean ignore them.
# Then each rule faces the ALIE attack whose scale is line-searched against *that* rule (ByzFL's "optimal"
# attack). Runs on a CPU in well under a minute.

# %%
import sys

if 'google.colab' in sys.modules:  # Colab only: fetch the repository (notebooks import its experiments/)
  import os
  import subprocess
  subprocess.run(['git', 'clone', '-q', 'https://github.com/polyak-dev/polyak'], check=False)
  os.chdir('polyak')
  subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '-e', '.'], check=True)

# %%
import functools

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from sklearn.datasets import load_digits

import decentral
from decentral import axis

n, f, steps, bs = 10, 3, 150, 32
digits = load_digits()
order = np.random.RandomState(0).permutation(len(digits.target))
x_all = jnp.asarray(digits.data[order] / 16.0, jnp.float32)
y_all = jnp.asarray(digits.target[order])
x_train, y_train, x_test, y_test = x_all[:1400], y_all[:1400], x_all[1400:], y_all[1400:]
shards = jnp.arange(1400).reshape(n, -1)  # worker i samples from its own 140 examples
params0 = {'w': jnp.zeros((64, 10)), 'b': jnp.zeros(10)}


def loss(p, xb, yb):
  return optax.softmax_cross_entropy_with_integer_labels(xb @ p['w'] + p['b'], yb).mean()


def accuracy(p):
  return jnp.mean(jnp.argmax(x_test @ p['w'] + p['b'], -1) == y_test)


# %% [markdown]
# One training run: every worker samples a batch from its shard, computes its gradient and calls the chain. The
# whole run is one `lax.scan` inside one `jit`.

# %%
def train(rule, attack):
  parts = [decentral.byzantine(attack, axis_name='workers', f=f)] if attack else []
  tx = optax.chain(*parts, decentral.aggregate(rule, axis_name='workers', f=f), optax.sgd(0.5))

  def worker_step(p, state, shard, key):
    idx = shard[jax.random.randint(key, (bs,), 0, shard.shape[0])]
    grads = jax.grad(loss)(p, x_train[idx], y_train[idx])
    updates, state = tx.update(grads, state, p)
    return optax.apply_updates(p, updates), state

  step = axis.run(worker_step, n)

  @jax.jit
  def run():
    p = jax.tree.map(lambda v: jnp.broadcast_to(v, (n,) + v.shape), params0)
    state = axis.run(tx.init, n)(p)

    def body(carry, t):
      p, state = carry
      p, state = step(p, state, shards, jax.random.split(jax.random.key(t), n))
      return (p, state), accuracy(jax.tree.map(lambda v: v[0], p))  # worker 0 is honest

    return jax.lax.scan(body, (p, state), jnp.arange(steps))[1]

  return np.asarray(run())


ipm = functools.partial(decentral.inner_product_manipulation, tau=4.0)
runs = {
    'mean, no attack': train(decentral.mean, None),
    'mean, IPM': train(decentral.mean, ipm),
    'trimmed mean, IPM': train(decentral.trimmed_mean, ipm),
    'NNM + trimmed mean, IPM': train(decentral.nnm_then(decentral.trimmed_mean), ipm),
}
for name, curve in runs.items():
  print(f'{name:>26s}: test accuracy {curve[-1]:.3f}')

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for name, curve in runs.items():
  ax.plot(curve, label=name)
ax.set_xlabel('step')
ax.set_ylabel('test accuracy (honest worker)')
ax.set_ylim(0, 1)
ax.legend()
ax.set_title(f'n={n} workers, f={f} send -4 x the honest mean')
plt.show()

# %% [markdown]
# The strongest ALIE against each rule: every round the faulty workers line-search the scale tau of
# mean + tau * std (20 evaluations, ByzFL's search) to push that rule's aggregate furthest from the honest mean.
# The mean is pushed arbitrarily far; the robust rules lose a little.

# %%
for name, rule in [('mean', decentral.mean), ('trimmed mean', decentral.trimmed_mean),
                   ('NNM + trimmed mean', decentral.nnm_then(decentral.trimmed_mean))]:
  curve = train(rule, decentral.optimal_a_little_is_enough(rule))
  print(f'{name:>20s} under its strongest ALIE: test accuracy {curve[-1]:.3f}')
