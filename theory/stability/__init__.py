"""Dynamical (linear, mean-square) stability of SGD at an interpolating minimum: exact threshold and checks.

Setting (Wu, Ma & E, NeurIPS 2018; Wu & Su, arXiv 2305.17490). Square loss ``L = (1/2n) sum_i (f_i - y_i)^2`` at
an interpolating minimum ``theta*``: the per-sample Hessians are rank one, ``H_i = g_i g_i^T`` with
``g_i = grad_theta f(x_i; theta*)``, and ``H = (1/n) sum_i H_i``. Linearised SGD with batch size ``B``, each batch
drawn uniformly **without replacement** and independently at every step, is

    theta_{t+1} - theta* = (I - eta H_hat_t)(theta_t - theta*),     H_hat_t = (1/B) sum_{i in S_t} H_i.

**Stability notion**: mean-square, ``E ||theta_t - theta*||^2 <= C ||theta_0 - theta*||^2`` for all ``t``. The
second moment ``M_t = E[(theta_t - theta*)(theta_t - theta*)^T]`` evolves by the exact linear operator

    T(eta, B) = (I - eta H) (x) (I - eta H) + eta^2 p_B (E_i[H_i (x) H_i] - H (x) H),   p_B = (n - B)/(B (n - 1)),

(the batch covariance for sampling without replacement; ``p_n = 0`` is GD, ``p_1 = 1``). ``T`` is symmetric and
maps PSD matrices to PSD matrices, so ``rho(T) = lambda_max(T)`` and stability is ``T - I <= 0``, i.e.
``eta K_B <= H (+) H`` with ``K_B = (1 - p_B) H (x) H + p_B E_i[H_i (x) H_i]``. Hence the stable set is the
interval ``[0, eta*(B)]`` with the closed form

    1 / eta*(B) = lambda_max( (H (+) H)^{-1/2} K_B (H (+) H)^{-1/2} )

(on the range of ``H``; the null space of ``H`` is neutral: that component of the iterate never moves). This
is Mulayoff & Michaeli's exact threshold (arXiv 2306.07850), and ``K_B`` is their "mixture" of a full-batch step
(probability ``1 - p_B``) and a single-sample step (probability ``p_B``). Every bound below is the Rayleigh
quotient of this pencil at a test matrix ``M``:

* ``M = u u^T`` (top eigenvector of ``H``): ``eta* <= 2a / ((1 - p) a^2 + p E_i[(u^T g_i)^4]) <= 2 / lambda_max``
  (the GD bound, Wu-Ma-E's necessary condition; equality for GD).
* ``M = I``: ``eta* <= 2 tr(H) / ((1 - p) ||H||_F^2 + p E_i ||g_i||^4)``. For ``B = 1`` (``p = 1``) and Jensen
  (``E||g||^4 >= tr(H)^2``) this is **Wu & Su's ``tr(H) <= 2 / eta``**, with equality iff all ``||g_i||`` are
  equal (Cauchy-Schwarz then shows ``M = I`` is the maximiser). For ``B > 1`` the trace bound only gives
  ``eta* tr(H) <= 2 / (p_B + (1 - p_B) ||H||_F^2 / tr(H)^2) <= 2 / p_B ~ 2B``: the ``2/eta`` statement is the
  ``B = 1`` one.

The nonlinear experiments (:func:`train_to_interpolation`, :func:`nonlinear_experiment`) train diagonal linear
networks ``f = <u * v, x>`` and two-layer ReLU networks ``f = sum_k a_k relu(w_k^T x)`` to interpolation by GD and
SGD, then measure ``lambda_max(H)``, ``tr(H)`` and ``||H||_F`` exactly (dense float64), cross-check them with
``optim``'s Lanczos and Hutchinson estimators, compute the exact ``eta*(B)`` of the minimum found, and the norms
that Wu & Su tie to sharpness: ``tr(H) = ||u||^2 + ||v||^2 >= 2 ||u * v||_1`` for diagonal networks with
``(1/n) sum_i x_ij^2 = 1`` (so SGD-stable means ``||beta||_1 <= 1/eta``), and for ReLU networks with ``||x_i|| = 1``,
``tr(H) = sum_k [q_k + a_k^2 rho_k] >= 2 sum_k |a_k| sqrt(rho_k q_k)`` (``rho_k`` the fraction of points where
unit ``k`` is active, ``q_k = mean_i relu(w_k^T x_i)^2``): a data-weighted path norm, next to the plain
``sum_k |a_k| ||w_k||``.

Modules: ``data`` (the problems), ``second_moment`` (``T`` and ``rho(T)``), ``threshold`` (``eta*(B)`` and the
bounds), ``monte_carlo``, ``linear`` (the linear experiment), ``models`` and ``training`` (the nonlinear models
and GD/SGD), ``nonlinear`` (the minima they reach), ``driver`` (:func:`run`) and ``plots`` (matplotlib).
Everything runs in float64 (``jax.enable_x64``) and returns dicts of NumPy arrays for the ``plot_*`` functions.
"""

from theory.stability.data import rank_one_problem, sparse_regression_data, sphere_teacher_data
from theory.stability.driver import run
from theory.stability.linear import linear_experiment, trace_survey
from theory.stability.models import MODELS, diagonal_net, init_params, relu_net
from theory.stability.monte_carlo import simulate_linear_sgd
from theory.stability.nonlinear import nonlinear_experiment, sharpness_metrics
from theory.stability.plots import plot_monte_carlo, plot_norm_vs_lr, plot_sharpness_vs_lr, plot_stability_heatmap
from theory.stability.second_moment import noise_factor, second_moment_operator, spectral_radius
from theory.stability.threshold import rayleigh_bounds, stability_threshold
from theory.stability.training import train_to_interpolation

__all__ = ['rank_one_problem', 'sparse_regression_data', 'sphere_teacher_data', 'run', 'linear_experiment',
           'trace_survey', 'MODELS', 'diagonal_net', 'init_params', 'relu_net', 'simulate_linear_sgd',
           'nonlinear_experiment', 'sharpness_metrics', 'plot_monte_carlo', 'plot_norm_vs_lr', 'plot_sharpness_vs_lr',
           'plot_stability_heatmap', 'noise_factor', 'second_moment_operator', 'spectral_radius', 'rayleigh_bounds',
           'stability_threshold', 'train_to_interpolation']
