"""SGD-noise regimes: how the temperature ``T = eta / B`` acts in the lazy and feature-learning regimes.

Sclocchi, Geiger & Wyart, "Dissecting the Effects of SGD Noise in Distinct Regimes of Deep Learning", ICML 2023,
arXiv 2301.13703 (no repository of the paper's code was found; its abstract, not its body, was available: the
exponents of the paper are not quoted here). Claims: the test error on the ``(alpha, T)`` plane (``alpha`` the
scale of the ``alpha``-trick, lazy for ``alpha >> 1``) shows that noise can hurt or help depending on the regime;
the characteristic temperature ``T_c`` where SGD noise starts affecting the trained model is a power law of the
training-set size ``P``; in a perceptron, where signal and noise are measured exactly, noise forces a larger
informative weight and a longer training time ``t* = eta x steps`` (``t* ~ T P^b``, APS 2023 abstract).

* :mod:`theory.sgd_noise.network`: a ReLU MLP with ``F = alpha (f(w) - f(w_0))``, hinge loss scaled by
  ``1 / alpha^2``, SGD with replacement until zero training loss;
* :mod:`theory.sgd_noise.perceptron`: the perceptron model (``rho(x_1) ~ |x_1|^chi e^{-x_1^2/2}``) with its exact
  SGD step moments and test error;
* :mod:`theory.sgd_noise.sweeps`: the phase diagram, ``T_c(P)`` and its exponent, the perceptron sweep;
* :mod:`theory.sgd_noise.data`: the even-vs-odd task (MNIST, or the bundled digits);
* :mod:`theory.sgd_noise.plots`: matplotlib.

Assumptions the results depend on: batches drawn with replacement; training stops at zero hinge loss, checked
every ``check_every`` steps for the network (every step for the perceptron); ``T_c`` is where a quantity reaches
twice its value at the smallest ``T`` (:func:`theory.sgd_noise.sweeps.crossover`).
"""

from theory.sgd_noise.data import parity_task
from theory.sgd_noise.network import init_mlp, mlp, predictor, train
from theory.sgd_noise.perceptron import (abs_x1_cdf, margins, per_example_gradients, run_sgd, sample_data,
                                         step_moments, test_error)
from theory.sgd_noise.plots import plot_crossover, plot_perceptron, plot_phase_diagram
from theory.sgd_noise.sweeps import crossover, crossover_vs_size, fit_power, perceptron_sweep, phase_diagram

__all__ = ['parity_task', 'init_mlp', 'mlp', 'predictor', 'train', 'abs_x1_cdf', 'margins', 'per_example_gradients',
           'run_sgd', 'sample_data', 'step_moments', 'test_error', 'plot_crossover', 'plot_perceptron',
           'plot_phase_diagram', 'crossover', 'crossover_vs_size', 'fit_power', 'perceptron_sweep', 'phase_diagram']
