"""Small-Gain Nash (SGN) certificates of contraction for N-player differentiable games.

Sharma, "Small-Gain Nash: Certified Contraction to Nash Equilibria in Differentiable Games", arXiv 2512.06791;
the official code is AashVed/SmallGainNash (NumPy/PyTorch). A game is given by its pseudo-gradient
``F(x) = (grad_1 f_1, ..., grad_N f_N)`` with player blocks of sizes ``d_1..d_N`` and Jacobian blocks ``J_ij``.

* Bounds on a region: curvature ``mu_i <= lambda_min(sym J_ii)`` and coupling ``L_ij >= ||J_ij||_2``
  (:func:`block_bounds` at a point, :func:`region_bounds` as min / max over sampled points).
* SGN matrix for weights ``w > 0``: ``C(w) = W K + K^T W`` with the Z-matrix ``K_ii = mu_i``, ``K_ij = -L_ij``
  (:func:`sgn_matrix`), and the margin ``alpha*(w) = lambda_min(W^{-1/2} C(w) W^{-1/2}) / 2``
  (:func:`sgn_margin`). This is the official code's definition (``sgn_margin`` in
  ``LQ_GAMES/compute_sgn_metrics.py``); the code covers ``N = 2`` and the same formula is used for any ``N``.
* Two players, ``r = w_2 / w_1``: ``alpha*(r) = lambda_min [[mu_1, -c], [-c, mu_2]]``,
  ``c = (L_12 / sqrt(r) + L_21 sqrt(r)) / 2``, maximised at ``r = L_12 / L_21`` for any ``mu`` (where
  ``c = sqrt(L_12 L_21)``); ``alpha*(r) >= alpha`` exactly on the band ``[r_-, r_+]``,
  ``r_pm = (2P - L_12 L_21 pm 2 sqrt(P (P - L_12 L_21))) / L_21^2`` with ``P = (mu_1 - alpha)(mu_2 - alpha)``,
  non-empty iff ``P > L_12 L_21`` and ``mu_i > alpha`` (:func:`two_player_band`).
* Any ``N``: some ``w`` gives ``alpha*(w) > 0`` iff ``K`` is a nonsingular M-matrix, i.e.
  ``rho(diag(mu)^{-1} L) < 1`` with all ``mu_i > 0`` (the classical small-gain condition; for ``N = 2``,
  ``L_12 L_21 < mu_1 mu_2``) (:func:`sgn_feasible`); :func:`optimal_weights` maximises the margin.
* Metric ``M(w) = diag(w_i I_{d_i})`` (or ``diag(w_i F_i)`` with Fisher blocks), the true margin
  ``alpha_true = lambda_min(M^{-1/2} (M J + J^T M) M^{-1/2}) / 2 >= alpha*`` and the Lipschitz constant
  ``beta = ||M^{1/2} J M^{-1/2}||_2`` (:func:`metric_constants`).
* Certificates: the flow contracts at rate ``alpha`` in ``||.||_M``; projected Euler with ``h < 2 alpha /
  beta^2`` contracts by ``sqrt(1 - 2 h alpha + h^2 beta^2)`` per step (:func:`euler_factor`); RK4 uses the
  official code's *guideline* ``h <= C_4 / beta`` with ``C_4 = 2.5`` (``LQ_GAMES/config.py``), which is not a
  proven bound here: it is compared with the exact RK4 threshold.

Modules: ``bounds`` (block bounds, SGN matrix and margin, band, feasibility), ``contraction`` (metric, true
margin, step sizes, simulated contraction), ``linalg`` (their matrix helpers), ``lq_games``, ``markov`` and
``plots`` (matplotlib).

Experiments (every function is float64 NumPy / ``jax.enable_x64``; plots are separate): the paper's 2-D
mini-toy (:func:`mini_toy`), its 64-dimensional linear-quadratic game across coupling strengths (:func:`lq_sweep`,
:func:`lq_phase`, :func:`lq_band`, :func:`lq_random_suite`) and an entropy-regularised two-player Markov game
under the Fisher metric with natural policy gradient (:func:`markov_game`).
"""

from theory.sgn.bounds import (block_bounds, optimal_weights, region_bounds, sgn_feasible, sgn_margin, sgn_matrix,
                               two_player_band, two_player_margin)
from theory.sgn.contraction import (RK4_C4, RK4_REAL_AXIS, euclidean_margin, euler_factor, euler_step_bound, metric,
                                    metric_constants, rk4_step_guideline, simulate_contraction, spectral_radius,
                                    stability_threshold, step_matrix)
from theory.sgn.lq_games import (lq_band, lq_coupling_matrix, lq_jacobian, lq_phase, lq_random_suite, lq_sweep,
                                 mini_toy)
from theory.sgn.markov import markov_game
from theory.sgn.plots import plot_band, plot_margins, plot_markov, plot_phase

__all__ = ['block_bounds', 'optimal_weights', 'region_bounds', 'sgn_feasible', 'sgn_margin', 'sgn_matrix',
           'two_player_band', 'two_player_margin', 'RK4_C4', 'RK4_REAL_AXIS', 'euclidean_margin', 'euler_factor',
           'euler_step_bound', 'metric', 'metric_constants', 'rk4_step_guideline', 'simulate_contraction',
           'spectral_radius', 'stability_threshold', 'step_matrix', 'lq_band', 'lq_coupling_matrix', 'lq_jacobian',
           'lq_phase', 'lq_random_suite', 'lq_sweep', 'mini_toy', 'markov_game', 'plot_band', 'plot_margins',
           'plot_markov', 'plot_phase']
