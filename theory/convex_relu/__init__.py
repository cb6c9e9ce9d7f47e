"""Global optimisation of two-layer ReLU networks by convex programs (Bai, Gautam & Sojoudi, arXiv 2201.01965).

The convex program over activation patterns (:mod:`~theory.convex_relu.program`, after Pilanci & Ergen, arXiv
2002.10553), solved by the paper's ADMM (:func:`admm`, Algorithm 3.1) over sampled or all patterns
(:func:`sample_patterns`, :func:`enumerate_patterns_2d`); the recovered network (:func:`recover_network`) certified
globally optimal by a dual point (:func:`dual_certificate`); the unconstrained gated-ReLU variant
(:func:`gated_relu_fista`); gradient descent on the non-convex network from several initialisations
(:func:`train_nonconvex`); and convex adversarial training with hinge loss (:func:`robust_hinge_program`, an exact
cutting-plane LP solver with its own optimality gap). The experiments are :func:`global_optimality` and
:func:`adversarial_training`; small cases are checked against CVXPY optima stored as test fixtures (CVXPY is not
a dependency).

Modules: ``patterns``, ``program``, ``admm_solver``, ``scp``, ``nonconvex``, ``adversarial``, ``experiment`` and
``plots``. Everything runs in float64.
"""

from theory.convex_relu.admm_solver import admm, admm_matrices
from theory.convex_relu.adversarial import robust_cone_violation, robust_hinge_objective, robust_hinge_program
from theory.convex_relu.experiment import adversarial_training, global_optimality
from theory.convex_relu.nonconvex import train_nonconvex
from theory.convex_relu.patterns import add_bias, enumerate_patterns_2d, sample_patterns
from theory.convex_relu.plots import plot_convergence, plot_robustness
from theory.convex_relu.program import (cone_violation, convex_objective, convex_predict, dual_certificate,
                                        nonconvex_objective, recover_network, relu_network)
from theory.convex_relu.scp import gated_relu_fista, gated_relu_predict

__all__ = ['admm', 'admm_matrices', 'robust_cone_violation', 'robust_hinge_objective', 'robust_hinge_program',
           'adversarial_training', 'global_optimality', 'train_nonconvex', 'add_bias', 'enumerate_patterns_2d',
           'sample_patterns', 'plot_convergence', 'plot_robustness', 'cone_violation', 'convex_objective',
           'convex_predict', 'dual_certificate', 'nonconvex_objective', 'recover_network', 'relu_network',
           'gated_relu_fista', 'gated_relu_predict']
