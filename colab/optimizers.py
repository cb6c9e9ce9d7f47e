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
# This section is still to be written: consensus-based optimization and optimistic online mirror descent.
