"""Langevin dynamics with iterate averaging recovers a planted direction at the smoothing rate.

Wei, Damian & Lee, "Improved high-dimensional estimation with Langevin dynamics and stochastic weight
averaging", arXiv 2603.06028 (no official code found). Spherical Langevin dynamics on ``S^{d-1}``,

    d theta = eps b(theta) dt + P_theta dW,    b = -grad L_n,

is run as :func:`optim.sgld` with ``sphere_radius=1`` (learning rate ``h eps``, ``beta = 2 eps``, time step
``h``); its stationary law is ``exp(-2 eps L_n)`` on the sphere. The estimates are the last iterate, the
uniform average ``theta_bar`` (odd ``k``: ``theta_bar / ||theta_bar||``) and the top eigenvector of the
second-moment average (even ``k``), kept by :func:`optim.tail_average`.

Problems (``k`` in {3, 4}; ``theta*`` uniform on the sphere):

* tensor PCA ``L_n(theta) = -<T, theta^{(x)k}>`` with ``T = theta*^{(x)k} + Z / sqrt(n)``, ``Z`` the
  symmetrisation of an i.i.d. ``N(0, 1)`` tensor (only its symmetric part enters ``L_n``);
* single-index ``y_i = h_k(<theta*, x_i>)``, ``x_i ~ N(0, I_d)``, ``h_k = He_k / sqrt(k!)``, with the
  correlation loss ``L_n(theta) = -(1/n) sum_i y_i h_k(<theta, x_i>)``.

**Oracle.** To first order in ``eps`` the stationary mean is ``E_pi[theta] = 2 eps Cov_mu(theta, -L_n)`` and
the second moment ``E_pi[theta theta^T] = I/d + 2 eps Cov_mu(theta theta^T, -L_n)`` under the uniform law
``mu`` (``E_mu[z_a z_b z_c z_e] = (d_ab d_ce + d_ac d_be + d_ae d_bc) / (d (d + 2))``). These are closed
forms, the *partial traces* (:func:`oracle`):

* tensor, k = 3: ``ptr(T)_j = sum_i T_iij``; k = 4: ``P = sum_c T_cc..`` (top eigenvector);
* single-index, k = 3: ``(1/n) sum_i y_i (||x_i||^2 - d - 2) x_i``; k = 4:
  ``(1/n) sum_i y_i (||x_i||^2 - d - 4) x_i x_i^T`` (top eigenvector; exact up to a multiple of ``I``, as is
  the tensor k = 4 one).

Their signal is ``theta*`` (or ``theta* theta*^T``) and their noise ``~ d / sqrt(n)``, so their overlap with
``theta*`` is a function of ``n / d^2`` for both k = 3 (``d^{ceil(k/2)}``; the abstract's ``d^{k/2}`` is
``d^{1.5}``) and k = 4 (``d^{k/2} = d^2``). The time average approaches the stationary mean, whose direction
is the oracle up to ``O(eps)``; the last iterate stays at the equator (overlap ``~ d^{-1/2}``).

Modules: ``problems`` (the problems, their loss and the oracle), ``dynamics`` (the Langevin run and the
estimates), ``sweeps`` (over ``d`` and ``n``, the threshold fit, time traces) and ``plots`` (matplotlib).

Batch size and counting: the full empirical loss every step (no minibatches); ``n`` counts tensor samples
(``T`` is the mean of ``n`` noisy copies) or single-index samples; the average keeps every iterate after a
burn-in of ``burn_in`` steps.
"""

from theory.langevin.dynamics import estimate, overlap, run_langevin
from theory.langevin.plots import plot_collapse, plot_trace
from theory.langevin.problems import loss_fn, oracle, single_index_problem, tensor_problem
from theory.langevin.sweeps import oracle_overlap, oracle_sweep, sweep, threshold_exponent, time_trace

__all__ = ['estimate', 'overlap', 'run_langevin', 'plot_collapse', 'plot_trace', 'loss_fn', 'oracle',
           'single_index_problem', 'tensor_problem', 'oracle_overlap', 'oracle_sweep', 'sweep', 'threshold_exponent',
           'time_trace']
