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
# # A tour of `theory/`: small exact experiments
#
# Each experiment is a float64 computation checked against a closed form or a dense oracle, with a separate
# plot function. Small settings here (CPU, a few minutes); the full-size figures come from the `experiments/`
# scripts (`python -m experiments.langevin_averaging`, `python -m experiments.sgn`, ...).
#
# 1. **Langevin averaging** (Wei, Damian & Lee, arXiv 2603.06028): the time average of spherical Langevin
#    dynamics recovers a planted direction where the last iterate stays at the equator.
# 2. **Small-Gain Nash certificates** (Sharma, arXiv 2512.06791): a block-weighted metric in which a
#    non-monotone game contracts, with certified step sizes.
# 3. **Hessian spectra** (Sagun et al., arXiv 1706.04454; Granziol et al., arXiv 2006.09092).
# 4. **Dynamical stability** of GD and SGD at a minimum (Wu, Ma & E 2018; Wu & Su, arXiv 2305.17490).

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
import numpy as np

from theory import langevin, sgn

# %% [markdown]
# ## 1. Langevin dynamics with iterate averaging
#
# Tensor PCA of order 3: $L_n(\theta) = -\langle T, \theta^{\otimes 3}\rangle$ with
# $T = \theta^{*\otimes 3} + Z/\sqrt n$. Spherical Langevin $d\theta = \varepsilon b\,dt + P_\theta dW$ is
# `optim.sgld(h * eps, beta=2 * eps, sphere_radius=1)`, and `optim.tail_average` keeps the running mean.
# The mean approaches the closed-form *partial trace* $\mathrm{ptr}(T)_j = \sum_i T_{iij}$, whose overlap with
# $\theta^*$ depends on $n/d^2$ only.

# %%
trace = langevin.time_trace(3, 'tensor', d=8, ratio=10.0, time_scale=10.0)
langevin.plot_trace(trace)
plt.show()
print(f"last iterate {float(trace['last']):.2f}, averaged iterate {float(trace['average']):.2f}, "
      f"oracle {float(trace['oracle']):.2f}; |cos(average, oracle)| = {float(trace['oracle_cosine']):.3f}")

# %% [markdown]
# The threshold law: the oracle's overlap against $n / d^{1.5}$ (the abstract's $d^{k/2}$) and against
# $n / d^{2}$ ($d^{\lceil k/2\rceil}$). The curves collapse on the second axis.

# %%
orc = langevin.oracle_sweep(3, 'tensor', dims=(8, 16, 32), ratios=tuple(np.geomspace(0.05, 50, 7)), seeds=6)
langevin.plot_collapse(orc, 'oracle')
plt.show()
print('fitted threshold exponent:', round(langevin.threshold_exponent(orc)['exponent'], 2), '(claim: 2)')

# %% [markdown]
# The simulated averaged iterate against $n/d^2$, next to the last iterate (a few seeds, short runs).

# %%
sim = langevin.sweep(3, 'tensor', dims=(6, 10), ratios=(0.3, 3.0, 30.0), seeds=4, time_scale=10.0)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
langevin.plot_collapse(sim, 'average', axes=[axes[0], axes[1]])
for i, d in enumerate(sim['dims']):
  axes[1].semilogx(sim['n'][i] / d ** 2, np.median(sim['last'][i], axis=-1), 'x:', label=f'last, d = {d}')
axes[1].legend(fontsize=7)
plt.show()

# %% [markdown]
# ## 2. Small-Gain Nash certificates
#
# The paper's 2-D game $f_1 = \tfrac12 x_1^2 + 10 x_1x_2$, $f_2 = \tfrac12 x_2^2 + 0.05 x_1x_2$: the
# Euclidean margin is $-4.025$, yet in the metric $M = \mathrm{diag}(1, 200)$ the SGN margin is
# $1 - \sqrt{0.5} = 0.2929$.

# %%
toy = sgn.mini_toy()
print(f"Euclidean margin {toy['euclidean_margin']:.3f}, SGN margin {toy['alpha_sgn']:.4f} at w = {toy['w']}, "
      f"band r in [{toy['band'][0]:.1f}, {toy['band'][1]:.1f}]")
fig, ax = plt.subplots(figsize=(5, 3.2))
ax.plot(toy['times'], toy['euclidean_norm'] / toy['euclidean_norm'][0], label='Euclidean norm')
ax.plot(toy['times'], toy['metric_norm'] / toy['metric_norm'][0], label='$M(w)$ norm')
ax.plot(toy['times'], np.exp(-toy['alpha_sgn'] * toy['times']), 'k:', label=r'$e^{-\alpha_* t}$')
ax.set(xlabel='t', ylabel='relative norm', title='mini-toy flow from (0.15, -0.15)')
ax.legend()
plt.show()

# %% [markdown]
# The linear-quadratic game (here 16-dimensional; the paper's is 64) across coupling strengths: Euclidean
# monotonicity fails at $\lambda \approx 0.2$, SGN certifies up to $\lambda = 1/\sqrt{ab} \approx 1.41$.
# Then the timescale band at $\lambda = 1$ and the Euler phase diagram with simulated runs.

# %%
sweep = sgn.lq_sweep(tuple(np.linspace(0, 2.5, 26)), d=16)
band = sgn.lq_band(1.0, tuple(np.geomspace(0.1, 1e4, 81)), d=16)
phase = sgn.lq_phase(tuple(np.linspace(0, 1.4, 8)[:-1]), d=16, steps=200, num_pairs=4)
fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
sgn.plot_margins(sweep, ax=axes[0])
sgn.plot_band(band, ax=axes[1])
sgn.plot_phase(phase, 'euler', ax=axes[2])
plt.tight_layout()
plt.show()

# %% [markdown]
# The entropy-regularised two-player Markov game under the Fisher metric: the certified NPG step
# $\eta_{\max} = 2\alpha/\beta^2$ next to the empirical limit (a few seeds here).

# %%
markov = sgn.markov_game(num_seeds=4, steps=1500, multipliers=tuple(np.logspace(-0.5, 1, 7)))
print(f"alpha = {markov['alpha']:.3f} at r = {markov['r_best']:.2f}, band {np.round(markov['band'], 2)}, "
      f"eta_max = {markov['eta_max']:.3f}; empirical limit = {markov['empirical_over_certified']:.2f} x eta_max "
      f"(exact linear threshold {markov['linear_over_certified']:.2f} x)")
sgn.plot_markov(markov)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 3. Hessian spectra (Sagun et al.; Granziol et al.)
#
# `theory.hessian.run(small=True)`: a small MLP on Gaussian clusters; the exact Hessian's spectrum with the
# SLQ estimate overlaid, outliers against the number of classes (counting rule in `theory/hessian/outliers.py`), and
# the sharpness of mini-batch Hessians against the batch size with the spiked random-matrix prediction.

# %%
from theory import hessian

spectra = hessian.run(small=True)
fig, axes = plt.subplots(1, 3, figsize=(16, 3.8))
hessian.plot_spectrum(spectra['spectrum'], spectra['slq'], ax=axes[0])
hessian.plot_outliers_vs_classes(spectra['classes'], ax=axes[1])
hessian.plot_batch_sharpness(spectra['batch'], ax=axes[2])
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Dynamical stability: $\lambda_{\max} \le 2/\eta$ for GD, $\mathrm{tr}\,H \le 2/\eta$ for SGD
#
# `theory.stability.run(small=True)`: the exact mean-square operator of linearised SGD over
# (learning rate, batch size) with Monte Carlo runs on both sides of the threshold, and the implicit bias on a
# diagonal linear network.

# %%
from theory import stability

stab = stability.run(small=True)
fig, axes = plt.subplots(1, 3, figsize=(16, 3.8))
stability.plot_stability_heatmap(stab['linear'], ax=axes[0])
stability.plot_monte_carlo(stab['linear'], ax=axes[1])
stability.plot_norm_vs_lr(stab['diagonal'], ax=axes[2])
plt.tight_layout()
plt.show()
