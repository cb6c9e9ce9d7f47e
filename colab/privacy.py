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
# # Differential privacy: what DP-SGD promises, what an auditor can see, and where the limits are
#
# Three tools of `optim.privacy`, on a CPU in seconds:
#
# 1. the **accountant** (`optim.privacy.epsilon`, through Google's `dp_accounting`) and the **f-DP trade-off
#    curve** of DP-SGD (`optim.privacy.tradeoff`), with the noise floor of Ertan and van Dijk,
#    "Fundamental Limitations of Favorable Privacy-Utility Guarantees for DP-SGD" (arXiv 2601.10237);
# 2. a **Bayesian privacy audit** (Zanella-Béguelin et al., arXiv 2206.05199, `optim.privacy.audit`): membership
#    inference on a worst-case canary pushed through the real `optim.dp_sgd_aggregate`, turned into a posterior
#    over epsilon, beside the Clopper-Pearson interval;
# 3. pointers to the full experiment (`python -m experiments.privacy`), which trains DP-SGD and DiceSGD on digits.

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

import optim
from optim import privacy
from optim.privacy import audit, plots, tradeoff

# %% [markdown]
# ## 1. The accountant and the trade-off curve
#
# DP-SGD on 60,000 examples with expected batch 256 (q = 256/60000) for 10 epochs. The accountant gives
# epsilon at delta = 1e-5; the f-DP curve f(alpha) is the smallest type-II error of any membership test at
# type-I error alpha. Random guessing is 1 - alpha.

# %%
q, steps, delta = 256 / 60000, 2340, 1e-5
for sigma in (0.6, 1.0, 2.0):
  print(f'sigma = {sigma}: eps = {privacy.epsilon(sigma, q, steps, delta, accountant="pld"):.2f} (PLD), '
        f'{privacy.epsilon(sigma, q, steps, delta):.2f} (RDP)')

fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
plots.tradeoff_figure(1.0, q, steps, ax=axes[0])
plots.tradeoff_figure(0.2, 1 / 1000, 1000, ax=axes[1])
plt.show()

# %% [markdown]
# The right panel is one shuffled epoch of M = 1000 steps below the noise floor 1/sqrt(2 ln M) = 0.269: the
# paper proves that then the curve is at least kappa = (1/sqrt 8)(1 - 1/sqrt(4 pi ln M)) away from the diagonal
# (the red line). The floor falls only like 1/sqrt(ln M):

# %%
for m in (10**2, 10**3, 10**6, 10**9):
  print(f'M = {m:>10}: sigma >= {tradeoff.noise_lower_bound(m):.3f} or kappa >= '
        f'{tradeoff.separation_lower_bound(m):.3f};  the max test alone forces it up to sigma = '
        f'{tradeoff.max_test_crossing(m):.3f}')
plots.noise_floor_figure()
plt.show()

# %% [markdown]
# ## 2. A Bayesian audit of DP-SGD
#
# The worst case for DP-SGD: every other example's gradient is known (here zero), and the canary's gradient has
# norm >= C in a direction nobody else touches. We run `optim.dp_sgd_aggregate` for T full-batch steps in 2,000
# models, half with the canary, and score each model by its summed update along the canary's direction.

# %%
sigma, steps, models = 1.0, 4, 2000


tx = privacy.dp_sgd_aggregate(1.0, sigma, reduction='sum')


@jax.jit
def released(keys, member):
  grads = jnp.zeros((4, 1)).at[3, 0].set(5.0)  # 3 known examples and the canary (clipped to C = 1)

  def one(key, is_member):
    state = tx.init(jnp.zeros(1))._replace(key=key)
    total = 0.0
    for _ in range(steps):
      out, state = tx.update(grads, state, mask=jnp.arange(4) < 3 + is_member)
      total = total + out[0]
    return total

  return jax.vmap(one)(keys, member)


member = np.arange(models) % 2 == 0
scores = np.asarray(released(jax.random.split(jax.random.key(0), models), jnp.asarray(member)))
ins, outs = scores[member], scores[~member]
threshold = audit.select_threshold(ins[:500], outs[:500], delta)   # choose on one half ...
counts = audit.attack_counts(ins[500:], outs[500:], threshold)     # ... count on the other
print(counts)

# %% [markdown]
# The posterior over the attack's epsilon (Jeffreys priors on FNR and FPR, pushed through the privacy region),
# its 95% credible interval, and the Clopper-Pearson interval at the same 1,000 trials:

# %%
eps = privacy.epsilon(sigma, 1.0, steps, delta, accountant='pld')
bayes = audit.credible_interval(counts, delta)
cp = audit.clopper_pearson_interval(counts, delta)
print(f'accountant: eps = {eps:.2f}')
print(f'Bayesian 95%:        [{bayes[0]:.2f}, {bayes[1]:.2f}]  width {bayes[1] - bayes[0]:.2f}')
print(f'Clopper-Pearson 95%: [{cp[0]:.2f}, {cp[1]:.2f}]  width {cp[1] - cp[0]:.2f}')
print(f'one-sided 95% lower bound {audit.epsilon_lower_bound(counts, delta):.2f} <= {eps:.2f}')

draws = audit.posterior_samples(counts, delta, 100_000)
plt.hist(draws[np.isfinite(draws)], bins=100, density=True)
plt.axvline(eps, color='k', ls='--', label='accountant')
for x in bayes:
  plt.axvline(x, color='b', ls=':')
plt.xlabel('epsilon of the attack')
plt.legend()
plt.show()

# %% [markdown]
# ## 3. Training
#
# `python -m experiments.privacy` trains an MLP on digits with `optim.dp_sgd` and `optim.dice_sgd` (DiceSGD's
# clipped error feedback, arXiv 2311.14632) at equal epsilon, audits black-box models trained with and without
# mislabelled canaries, and draws these figures for the settings it used; see `experiments/lib/privacy.py`.
