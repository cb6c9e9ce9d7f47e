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
# # A second tour of `theory/`: generalization, noise, rates, kernels and convex training
#
# Eight more seed papers as small exact experiments, each checked against a closed form, a dense oracle or a
# reference package in `tests/theory/`, with its full-size script in `experiments/` and its claim in
# `REPRODUCTIONS.md`. Settings here are small (CPU, seconds each):
#
# 1. **Gradient coherence** (Chatterjee & Zielinski): real labels give coherent per-example gradients.
# 2. **Benign oscillation** (Lu, Wu, Yang & Zou): large-learning-rate SGD learns the weak features.
# 3. **SGD-noise regimes** (Sclocchi, Geiger & Wyart): test error in (initialisation scale, temperature).
# 4. **Last-iterate rates** (Liu & Zhou): composite stochastic mirror descent, measured exponents.
# 5. **Tensor-program kernels** (Yang): NNGP and NTK at infinite width against finite networks.
# 6. **Convex two-layer ReLU training** (Bai, Gautam & Sojoudi): a certified global optimum.
# 7. **Directional sharpness** (Pan & Li): Adam's update direction is flatter than SGD's.
# 8. **Learning rates and batch size** (Granziol, Zohren & Roberts): Marchenko-Pastur batch spectra.

# %%
import sys

if 'google.colab' in sys.modules:  # Colab only: fetch the repository (notebooks import its experiments/)
  import os
  import subprocess
  subprocess.run(['git', 'clone', '-q', 'https://github.com/polyak-dev/polyak'], check=False)
  os.chdir('polyak')
  subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '-e', '.'], check=True)

# %% [markdown]
# ## 1. Gradient coherence: real vs random labels (Chatterjee & Zielinski, arXiv 2203.10036)
#
# For per-example gradients $g_1, \dots, g_m$ of a fixed sample, the coherence is
# $\alpha = \|\sum_i g_i\|^2 / (m \sum_i \|g_i\|^2)$ and the **m-coherence** $m\alpha$ counts how many examples of
# the sample a small step along one example's gradient helps on average: $1$ for orthogonal gradients, $m$ for
# identical ones. The theory says real labels give coherent gradients (so gradient descent is stable and
# generalises), random labels incoherent ones. `theory.coherence` computes it from `optim.per_example_grads` in
# $O(m)$, checked against the $O(m^2)$ Gram matrix.

# %%
import jax.numpy as jnp
import numpy as np
from theory import coherence
from theory.numerics import float64   # theory computes in float64: run the metric with jax_enable_x64 on

print('orthogonal:', float(coherence.m_coherence(jnp.eye(8))),
      ' identical:', float(coherence.m_coherence(jnp.ones((8, 3)))))
g = np.random.RandomState(0).randn(16, 5) + 0.5
print('O(m) alpha', float(float64(coherence.alpha_coherence)(g)),
      '= Gram alpha', float(float64(coherence.gram_coherence)(g)))

# %% [markdown]
# Plain SGD on scikit-learn's digits with the true labels and with every label redrawn at random; the m-coherence
# of the same 128 training examples is logged every 10 steps. With real labels it starts higher and stays about
# twice as high; with random labels it hovers near 1, the value of orthogonal gradients. It falls as the examples
# are fitted (the summed gradient goes to zero by construction near a minimum), so compare early steps.

# %%
x, y, x_test, y_test = coherence.digits()
out = coherence.coherence_vs_label_noise(x, y, x_test, y_test, fractions=(0.0, 1.0), hidden=(64,), steps=100,
                                         eval_every=10, coherence_size=128, learning_rate=0.1)
for f, r in zip(out['fractions'], out['runs']):
  print(f'{f:.0%} random labels: m-coherence at steps 0-100 = {np.round(r["m_coherence"], 1)}')
coherence.plot_coherence(out);

# %% [markdown]
# The paper's suppression: average the per-example gradients robustly, so that directions supported by few
# examples (memorisation) are cut. `coherence.winsorized_mean` clips every coordinate to its $(c+1)$-th smallest
# and largest values before averaging. In `experiments/gradient_coherence.py` (50% of 500 digits labels redrawn)
# winsorising $c = 10$ of 100 keeps the wrong labels almost unlearnt while the test accuracy stays higher than plain
# SGD's (see the reproductions ledger, claim `coherence_suppression`).

# %%
batch = jnp.array([[0.0, 1.0], [0.1, 1.1], [-0.1, 0.9], [0.05, 50.0]])   # one example pulls hard on coordinate 2
print('mean      ', np.asarray(batch.mean(0)))
print('winsorised', np.asarray(coherence.winsorized_mean(batch, 1)))

# %% [markdown]
# ## 2. Benign oscillation (Lu, Wu, Yang & Zou, arXiv 2310.17074)
#
# Data: every example carries a **weak** feature $y v$ ($\|v\| = 1$), 80% also a **strong** one $y u$
# ($\|u\| = 5$), plus Gaussian noise patches. A two-layer CNN trained by SGD with a small learning rate fits the strong
# feature and memorises the rest through the noise; with a large learning rate, just below the edge of stability,
# SGD keeps jumping across the minimum along the strong feature (the residual on strong-feature examples alternates
# in sign), those examples never stop pushing, and the weak feature is learnt. The test: data with the weak feature
# alone.

# %%
import numpy as np
from theory import oscillation

out = oscillation.learning_rate_sweep([0.05, 0.8], seeds=(0,), steps=2000)
for i, lr in enumerate(out['learning_rates']):
  print(f"eta = {lr}: weak-only test accuracy {out['weak_test_acc'][0, i]:.2f}, A_v {out['align_weak'][0, i]:.2f}, "
        f"A_u {out['align_strong'][0, i]:.2f}, strong-residual swing {out['oscillation'][0, i]:.4f}")
print('2 / lambda_max where the small learning rate ends:', 2 / out['sharpness'][0])

# %%
oscillation.plot_oscillation(out, steps=60);

# %% [markdown]
# The data model's layout (three patches, noise orthogonal to both features), the squared-ReLU activation and the
# square loss are this implementation's choices; with the logistic loss or a plain ReLU the runs here never
# oscillate at a bounded learning rate. The effect lives in a narrow band just below divergence
# (`experiments/benign_oscillation.py` sweeps it over five seeds).

# %% [markdown]
# ## 3. SGD noise in distinct regimes (Sclocchi, Geiger & Wyart, arXiv 2301.13703)
#
# The temperature `T = eta / B` of SGD matters late in training: to fit every point with margin 1, a noisy run
# must grow a larger informative weight, and takes longer. In the perceptron model (teacher `y = sign(x_1)`,
# `rho(x_1) ~ |x_1|^chi e^{-x_1^2/2}`) the signal `w_1` and the noise `||w_perp||` are read off the weights, and
# the test error is a 1-D integral. `theory.sgd_noise.run_sgd` trains with hinge loss until the loss is exactly 0.

# %%
import jax
import jax.numpy as jnp
import numpy as np

from theory import sgd_noise

temps = jnp.array([0.03, 0.3, 3.0, 30.0])
with jax.enable_x64(True):
  x, y = sgd_noise.sample_data(jax.random.key(0), 128, 128, chi=0.0)
  out = jax.jit(jax.vmap(lambda t: sgd_noise.run_sgd(x, y, temperature=t, batch=4, key=jax.random.key(1))))(temps)
for t, ts, w1, wp in zip(temps, out['t_star'], out['w1'], out['w_perp']):
  err = sgd_noise.test_error(float(w1), float(wp), 0.0)
  print(f'T = {float(t):5.2f}: t* = {float(ts):8.1f}, signal w_1 = {float(w1):6.1f}, '
        f'noise |w_perp| = {float(wp):6.1f}, test error {err:.3f}')
print('slope of t* in T over the two largest T:', round(sgd_noise.fit_power(temps[-2:], out['t_star'][-2:]), 2),
      '(the paper: t* ~ T P^b)')

# %% [markdown]
# The SGD step's mean and covariance are exact at any weights: `-eta grad L` and `(eta^2 / B) Cov_mu(g_mu)` over
# the examples with unmet margins. The noise's size relative to the drift is what sets the crossover temperature.

# %%
with jax.enable_x64(True):
  mean, cov = sgd_noise.step_moments(out['w'][0] * 0.5, x, y, eta=0.1, batch=4)
  print('|mean step| =', float(jnp.linalg.norm(mean)), ' sqrt(trace cov) =', float(jnp.sqrt(jnp.trace(cov))))

# %% [markdown]
# ## 4. Last-iterate convergence of stochastic gradient methods
#
# Liu & Zhou (arXiv 2312.08531) prove last-iterate rates for composite stochastic mirror descent (CSMD),
# $x_{t+1} = \arg\min_x \eta_t\langle g_t, x\rangle + \eta_t h(x) + D_\psi(x, x_t)$, on unbounded domains, for
# Lipschitz or smooth, convex or strongly convex $f$, Euclidean or not, and under heavy-tailed noise:
# $O(\log T/\sqrt T)$ (convex), $O(\log T / T)$ (strongly convex), $O(T^{(1-p)/p}\log T)$ with a finite $p$-th
# moment. `theory.last_iterate` runs CSMD on problems whose $x^*$ and $F^*$ are closed forms (proximal SGD for
# $\tfrac12\|x-c\|^2 + \lambda\|x\|_1$, exponentiated gradient on the simplex, ...) and fits the log-log slope of
# the median of $F(x_T) - F^*$ over seeds. Only the exponents are compared: the theorems' constants were not
# retrievable. Full size: `python -m experiments.last_iterate`.

# %%
import matplotlib.pyplot as plt

from theory import last_iterate

names = ('lipschitz_convex', 'composite_strongly_convex', 'simplex_mirror_descent', 'heavy_tailed_composite')
cases = [last_iterate.rate_case(name, t_max=2000, num_seeds=32, dim=5) for name in names]
last_iterate.plot_rates(cases)
plt.show()
for c in cases:
  print(f"{c['name']:28s} slope {c['slopes'][0.5]:+.2f}   bound exponent {c['predicted_exponent']:+.2f}")

# %% [markdown]
# ## 5. Tensor-program kernels (Yang, arXiv 1902.04760)
#
# Wide networks with weight sharing (convolutions share a filter across pixels, RNNs a matrix across time) are
# Gaussian processes at initialisation, and their NTK converges. `theory.kernels` computes the infinite-width
# NNGP kernel and NTK of an MLP, a 1-D CNN and a simple RNN by the recursions, with the closed-form arc-cosine
# (ReLU) and arcsine (erf) expectations, in the NTK parametrization that neural-tangents uses by default (the
# stored neural-tangents 0.6.5 kernels match the recursions to 1e-6). Below, finite networks approach the
# recursions as the width grows. The empirical NTK is `J J^T`, with `J` from `optim.per_example_grads`.

# %%
import jax
import jax.numpy as jnp
import numpy as np

from theory import kernels

with jax.enable_x64(True):
  x = jax.random.normal(jax.random.key(0), (3, 4, 3))          # 3 sequences of 4 steps in R^3
  rnn = jax.jit(lambda x: kernels.rnn_kernels(x, activation='erf'))  # one compilation, not one per operation
  print('RNN NTK at infinite width:\n', np.round(rnn(x)['ntk'], 3))

sweeps = [kernels.width_sweep('mlp_erf', widths=(16, 64, 256), seeds=4, num_inputs=3)]
for r in sweeps:
  print(f"{r['name']}: NTK error {np.round(r['ntk_rms'], 3)} -> slope {r['ntk_slope']:.2f} (CLT: -0.5)")
kernels.plot_width_sweep(sweeps);

# %% [markdown]
# The framework also rederives the semicircle law (Wigner matrices) and the Marchenko-Pastur law (Wishart
# matrices). Sampled spectra against the closed-form densities, with the Kolmogorov-Smirnov distance to the
# closed-form CDFs:

# %%
ratio = 0.25
wig, wis = kernels.wigner_spectrum(600), kernels.wishart_spectrum(600, ratio)
print('KS to the semicircle:', round(kernels.ks_distance(wig, kernels.semicircle_cdf), 4),
      '| KS to Marchenko-Pastur:', round(kernels.ks_distance(wis, lambda t: kernels.mp_cdf(t, ratio)), 4))
print('tr A^4 / n =', round(float(np.mean(wig ** 4)), 3), 'vs Catalan C_2 =', kernels.catalan(2))
kernels.plot_spectra(wig, wis, ratio);

# %% [markdown]
# ## 6. Convex training of two-layer ReLU networks, certified
#
# Bai, Gautam & Sojoudi (arXiv 2201.01965) train a two-layer ReLU network through its convex reformulation over
# activation patterns $D_i = \mathrm{diag}(1[Xh_i \ge 0])$ (Pilanci & Ergen), with an ADMM whose iterations cost
# quadratic time. With points in the plane every pattern can be listed, so the residual of the recovered network
# gives a *dual-feasible* point (one non-negative least squares per pattern) and the duality gap certifies that the
# network is globally optimal. Gradient descent on the non-convex network, from several initialisations at the
# same width, never goes below the certified bound. Full size: `python -m experiments.convex_relu`.

# %%
import matplotlib.pyplot as plt

from theory import convex_relu

g = convex_relu.global_optimality(n=8, admm_iterations=2000, num_inits=4, steps=2000)
convex_relu.plot_convergence(g)
plt.show()
print(f"{g['num_patterns']} patterns, network of {g['num_neurons']} neurons: objective {g['upper_bound']:.5f}, "
      f"dual bound {g['lower_bound']:.5f} (relative gap {g['relative_gap']:.1e}); GD finals: {g['gd_final'].round(4)}")

# %% [markdown]
# Convex adversarial training (hinge loss, $\ell_\infty$ radius $\varepsilon$): keeping every pattern for every
# perturbed input turns the cone constraints into $(2D_i - I)Xv_i \ge \varepsilon\|v_i\|_1$, and the worst-case hinge
# loss is then exact. The program is an LP plus second-order cones, solved here by cutting planes (HiGHS).

# %%
a = convex_relu.adversarial_training(n=24, num_test=100, num_gates=10, eps_train=(0.0, 0.1), eps_attack=(0.0, 0.1))
print('test accuracy [train eps x attack eps]:\n', a['test_accuracy'].round(3))
print('certified robust training accuracy:', a['certified_train_accuracy'])

# %% [markdown]
# ## 7. Directional sharpness: why Adam beats SGD on transformers (Pan & Li, arXiv 2306.00204)
#
# Along a step $-\eta v$ the loss changes by $-\eta\langle g, v\rangle + \tfrac{\eta^2}{2} v^\top H v$: a good
# direction has a large gradient correlation and a small **directional sharpness** $v^\top H v / \|v\|^2$ (one
# Hessian-vector product, `optim.hvp`). On a quadratic with one stiff coordinate, the gradient points mostly along
# it; Adam's first step $g / (|g| + \epsilon) \approx \mathrm{sign}(g)$ does not, and clipping the largest coordinate
# (`optim.coordinate_clip`) helps SGD's direction the same way.

# %%
import jax.numpy as jnp
import numpy as np
import optax
from theory import directional_sharpness as ds
from theory.numerics import float64   # theory computes in float64: run with jax_enable_x64 on

curvature = np.array([100.0, 1.0, 0.5, 0.2, 0.1])
quadratic = lambda w, batch=None: 0.5 * jnp.sum(curvature * w ** 2)
w = np.linspace(1.0, 2.0, 5)
g = curvature * w
sharpness = float64(ds.sharpness_along)
print('gradient   ', float(sharpness(quadratic, w, g)))
print('sign(g)    ', float(sharpness(quadratic, w, np.sign(g))), '(= mean curvature', curvature.mean(), ')')
print('local model', {k: round(float(v), 4) for k, v in float64(ds.local_model)(quadratic, w, g).items()})

# %% [markdown]
# Along training of a (tiny) character transformer: every optimizer's own update, the gradient at its points (SGD's
# direction there) and the clipped gradient. `experiments/directional_sharpness.py` runs the full-size version on
# tiny Shakespeare.

# %%
from experiments.configs import directional_sharpness as config_module
from experiments.lib import directional_sharpness as lib

cfg = config_module.get_config('smoke')
loss_fn, params, batch_fn, eval_batch = lib.make_problem(cfg)
out = ds.sharpness_along_training(loss_fn, params, {'sgd': optax.sgd(0.3, momentum=0.9), 'adam': optax.adam(3e-3)},
                                  batch_fn, eval_batch, steps=10, every=5)
for name, r in out.items():
  print(name, 'update', np.round(r['sharpness_update'], 2), ' gradient', np.round(r['sharpness_gradient'], 2),
        ' clipped gradient', np.round(r['sharpness_clipped_gradient'], 2))
ds.plot_sharpness(out);

# %% [markdown]
# ## 8. Learning rates as a function of batch size
#
# Granziol, Zohren & Roberts (arXiv 2006.09092) model the batch Hessian as the full one plus a random matrix whose
# scale grows like $1/B$, so the largest stable SGD step grows *linearly* in $B$, and Adam's (whose preconditioner
# shrinks like $1/\sqrt B$) like $\sqrt B$. For least squares the batch Hessian $X_B^\top X_B/B$ is a sample
# covariance: its spectrum is Marchenko-Pastur with ratio $\gamma = d/B$, its top eigenvalue $(1+\sqrt\gamma)^2$
# (or the BBP value with a spike), and online SGD is mean-square stable iff $\eta < 2B/(B+d+1)$ exactly.
# Full size: `python -m experiments.batch_size_lr`.

# %%
import matplotlib.pyplot as plt

from theory import hessian

spec = hessian.batch_spectrum(dim=200, batch_sizes=(100, 400), spike=1.0, num_batches=3)
hessian.plot_batch_spectrum(spec, index=1)
plt.show()
print('lambda_max(H_B) / MP edge:', (spec['lambda_max'].mean(1) / spec['predicted_top']).round(3))

# %%
sweep = hessian.lr_scaling_sweep(dim=30, batch_sizes=(1, 2, 4, 8, 16), steps=150, num_lrs=14, seeds=2, noise=0.0)
hessian.plot_lr_scaling(sweep)
plt.show()
print({k: round(v, 2) for k, v in sweep['slopes'].items()})
