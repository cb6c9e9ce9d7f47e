"""Last-iterate convergence of stochastic gradient methods, measured (Liu & Zhou, arXiv 2312.08531).

Composite stochastic mirror descent (:func:`csmd_step`, :func:`run_csmd`) on closed-form problems
(:mod:`~theory.last_iterate.problems`): Lipschitz convex (:func:`absolute_regression`, unbounded domain),
Lipschitz strongly convex (:func:`l1_strongly_convex`), smooth convex (:func:`ill_conditioned_quadratic`),
composite smooth strongly convex (:func:`lasso_composite`, proximal SGD), non-Euclidean
(:func:`simplex_quadratic`, exponentiated gradient on the simplex), and the same with Student-t gradient noise
(finite moments of order ``p < df`` only). :func:`rate_experiment` measures the median and 0.9 quantile of
``F(x_T) - F*`` over seeds against ``T`` and fits log-log slopes next to the exponents of the paper's bounds
(:mod:`~theory.last_iterate.rates`, which says what was and was not retrievable of the paper's constants).

Modules: ``problems``, ``csmd``, ``rates``, ``sweeps`` and ``plots`` (matplotlib). Everything runs in float64.
"""

from theory.last_iterate.csmd import csmd_step, run_csmd, schedule
from theory.last_iterate.plots import plot_rates
from theory.last_iterate.problems import (PROBLEMS, Problem, absolute_regression, ill_conditioned_quadratic,
                                          l1_strongly_convex, lasso_composite, noise_sampler, simplex_quadratic,
                                          soft_threshold, water_filling)
from theory.last_iterate.rates import (bound_shape, fit_slope, log_slope_of_bound, predicted_exponent,
                                       quadratic_expected_gap, quantile_slopes)
from theory.last_iterate.sweeps import CASES, checkpoints, rate_case, rate_experiment

__all__ = ['csmd_step', 'run_csmd', 'schedule', 'plot_rates', 'PROBLEMS', 'Problem', 'absolute_regression',
           'ill_conditioned_quadratic', 'l1_strongly_convex', 'lasso_composite', 'noise_sampler', 'simplex_quadratic',
           'soft_threshold', 'water_filling', 'bound_shape', 'fit_slope', 'log_slope_of_bound', 'predicted_exponent',
           'quadratic_expected_gap', 'quantile_slopes', 'CASES', 'checkpoints', 'rate_case', 'rate_experiment']
