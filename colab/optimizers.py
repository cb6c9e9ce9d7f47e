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
# # Optimizers beyond a step rule
#
# Methods of the seed papers that are not a plain update rule: a loss term with a memory (SAF, MESA) and an
# optimizer that takes several cheap steps per expensive gradient (SSO). Each section runs on a CPU in seconds.

# %%
import sys

if 'google.colab' in sys.modules:  # Colab only: fetch the repository (notebooks import its experiments/)
  import os
  import subprocess
  subprocess.run(['git', 'clone', '-q', 'https://github.com/polyak-dev/polyak'], check=False)
  os.chdir('polyak')
  subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '-e', '.'], check=True)

# %%
import matplotlib.pyplot as plt

# %% [markdown]
# ## Sharpness-aware training for free: SAF and MESA
#
# SAM (arXiv 2010.01412) flattens the minimum it finds by taking each gradient at an adversarially perturbed point,
# which costs a second gradient per step. SAF (arXiv 2205.14083) adds instead a *trajectory loss*: the tempered
# KL divergence from the outputs each training example had a few epochs ago to its current outputs, which punishes
# the sudden drops of the loss that happen in sharp basins. MESA uses the outputs of an EMA of the weights instead
# of stored ones. Both are loss terms with a state (`init`, `loss`, `update`), so they work with any optimizer:
#
# ```python
# term = optim.saf(num_examples=N, num_classes=K)            # or optim.mesa(model.apply)
# loss = optim.sharpness.trajectory.regularize(model.apply, per_example_ce, term)
# (total, (logits, ce)), grads = jax.value_and_grad(loss, has_aux=True)(params, state, x, y, epoch=e, indices=idx)
# state = term.update(state, epoch=e, logits=logits, indices=idx, params=new_params)
# ```
#
# `experiments/lib/sharpness.py` trains a digits MLP this way and measures the sharpness of the result: the top
# eigenvalue of the Hessian of the training loss (power iteration on Hessian-vector products) and the SAM-style
# ascent `L(w + rho g/|g|) - L(w)`. Here, one seed and a short run (`python -m experiments.sharpness` runs five
# seeds, SAM included).

# %%
from experiments.configs import sharpness as sharpness_config
from experiments.lib import sharpness

cfg = sharpness_config.get_config('smoke')
cfg.epochs, cfg.start_epoch = 10, 3
rows = [sharpness.train(cfg, method, seed=0) for method in ('sgd', 'saf', 'mesa')]
for r in rows:
  print(f"{r['method']:5s} top eigenvalue {r['top_eigenvalue']:.3f}  ascent sharpness {r['ascent_sharpness']:.4f}  "
        f"test accuracy {r['test_accuracy']:.3f}  gradients/step {r['gradients_per_step']}")

# %% [markdown]
# On digits the measured effect is small and depends on the seed (see `REPRODUCTIONS.md`, claim `saf_sharpness`).
#
# ## Target-based surrogates: SSO
#
# When the gradient of the loss with respect to the model's outputs is the expensive part (a simulator, an
# environment), SSO (arXiv 2302.02607) spends one such gradient to build a surrogate in the output ("target")
# space, `eta <G, f(w) - f_t> + |f(w) - f_t|^2 / 2`, and takes `m` cheap steps on it. `optim.sso` is an optax
# transform that receives the model on the batch and the loss of its outputs as extra arguments. With `m = 1` it is
# SGD; with more inner steps it goes further per expensive call.

# %%
from experiments.configs import surrogates as surrogates_config
from experiments.lib import surrogates

cfg = surrogates_config.get_config()
cfg.oracle_calls = 20
model, params, x, y = surrogates._problem(cfg)
plt.figure(figsize=(5, 3.5))
plt.plot(surrogates.curve(cfg, model, params, x, y, None, 2.0), label='SGD (lr 2)')
for m in (1, 5, 20):
  plt.plot(surrogates.curve(cfg, model, params, x, y, m, 4.0 * cfg.batch_size), label=f'SSO, m = {m}')
plt.yscale('log')
plt.xlabel('expensive oracle calls')
plt.ylabel('training loss (digits, softmax regression)')
plt.legend()
plt.show()

# %% [markdown]
# ## Consensus-based optimization and online learning
#
# **Consensus-based optimization** (`optim.cbo`, "Gradient is All You Need?", arXiv 2306.09778) moves a swarm of
# particles towards a softmax-weighted mean of themselves,
# `v = sum_i x_i exp(-alpha f(x_i)) / sum_i exp(-alpha f(x_i))`, plus noise proportional to each particle's
# distance from it. No gradient is evaluated. The step is written once per particle; `optim.run_ensemble` runs many
# independent swarms under `vmap`, or splits the particles over devices with `shard_map` (same numbers).
# Here: 20 swarms of 40 particles on Rastrigin in d = 2.

# %%
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import optim


def rastrigin(x):
  return 10.0 * x.shape[-1] + jnp.sum(x ** 2 - 10.0 * jnp.cos(2 * jnp.pi * x))


swarm = optim.cbo(rastrigin, alpha=1.0, sigma=1.0, dt=0.01, noise='anisotropic', alpha_growth=1.05)
x0 = jax.random.uniform(jax.random.key(0), (20, 40, 2), minval=-3.0, maxval=3.0)
# The 40 particles of each swarm split over the devices (8 virtual CPUs in the tests, 1 on a plain Colab CPU).
devices = jax.devices() if 40 % len(jax.devices()) == 0 else jax.devices()[:1]
out = optim.run_ensemble(swarm, x0, jax.random.key(1), steps=200, backend='shard_map', devices=devices)
final = out.consensus[-1]
print('success rate (||v||_inf < 0.25):', float(jnp.mean(jnp.max(jnp.abs(final), -1) < 0.25)))
plt.figure(figsize=(4, 4))
plt.scatter(*x0[0].T, s=8, label='particles at t = 0')
plt.plot(*out.consensus[:, 0].T, 'k-', lw=1, label='consensus point, swarm 0')
plt.scatter(*final.T, c='r', s=12, label='final consensus, 20 swarms')
plt.legend(fontsize=7)
plt.show()

# %% [markdown]
# The paper's point: as alpha grows, the consensus of particles spread around a point `c` moves like a gradient
# step. The cosine between `v - c` and `-grad f(c)`, averaged over random points of Rastrigin in d = 10, rises from
# about 0 (alpha -> 0: the plain mean) to a clear alignment (`experiments/cbo.py` records the full curve).

# %%
from experiments.configs import cbo as cbo_config
from experiments.lib import cbo as cbo_lib

cfg = cbo_config.get_config('smoke')
align = cbo_lib.alignment(cfg)
plt.figure(figsize=(4.5, 3))
plt.semilogx(align['alphas'], align['cosine'], 'o-')
plt.xlabel('alpha')
plt.ylabel('cos(v - c, -grad f(c))')
plt.show()

# %% [markdown]
# **Optimistic online mirror descent** (`optim.optimistic_omd`, arXiv 2302.04552) plays
# `x_t = argmin <M_t, x> + B(x, xhat_t) / eta_t` with a hint `M_t` of the coming gradient (the last one) and updates
# `xhat` with the observed gradient. In the matching-pennies game on the simplex (entropy mirror map) the optimistic
# last iterate converges to the equilibrium, while plain OMD (multiplicative weights) cycles away from it.

# %%
from optim.online import bilinear_game, duality_gap

A = jnp.array([[1.0, -1.0], [-1.0, 1.0]])
plt.figure(figsize=(4.5, 3))
for optimism in (True, False):
  tx = optim.optimistic_omd(0.1, mirror_map='entropy', optimism=optimism)
  run = bilinear_game(tx, tx, A, jnp.array([0.9, 0.1]), jnp.array([0.3, 0.7]), 1500)
  plt.semilogy(duality_gap(A, run.x, run.y), label='optimistic' if optimism else 'plain')
plt.xlabel('round')
plt.ylabel('duality gap')
plt.legend()
plt.show()

# %% [markdown]
# With the paper's adaptive step `eta_t = D / sqrt(delta + sum_{s<t} ||g_s - M_s||^2)` the regret on linear losses
# over the unit ball follows `sqrt(sigma^2_{1:T}) + sqrt(Sigma^2_{1:T})`: bounded without noise or variation, growing
# like `sqrt(T)` with stochastic noise (sigma) or adversarial sign flips (Sigma).

# %%
from optim.online import linear_regret, sea_linear

plt.figure(figsize=(4.5, 3))
for label, kw in (('no noise, no flips', {}), ('noise 1', dict(noise=1.0)), ('flip every round', dict(switch_every=1))):
  seq = sea_linear(jax.random.key(0), 1000, 10, **kw)
  run = linear_regret(optim.optimistic_omd(radius=1.0), seq.theta, jnp.zeros(10), 1.0)
  plt.loglog(jnp.arange(1, 1001), jnp.maximum(run.regret, 1e-2), label=label)
plt.xlabel('T')
plt.ylabel('regret')
plt.legend()
plt.show()
