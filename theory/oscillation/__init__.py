"""Benign oscillation of SGD with large learning rates (Lu, Wu, Yang & Zou, arXiv 2310.17074).

Data: weak features in every example, strong features in a fraction, noise patches (:func:`feature_noise_data`).
Model: a two-layer CNN with fixed second layer. Claim: SGD with a large learning rate, whose weights oscillate
along the strong feature, learns the weak feature, and classifies weak-only test data; SGD with a small learning
rate fits the strong feature, memorises the rest through noise, and fails on weak-only data.

Modules: ``data``, ``model`` (network, loss, feature alignments), ``training`` (SGD over a grid of learning
rates at once, oscillation index, weak-only accuracy), ``sweep`` (seeds x learning rates, ``lambda_max`` by
:func:`optim.power_iteration` on :func:`optim.hessian_matvec`) and ``plots``. Everything runs in float64.
"""

from theory.oscillation.data import feature_noise_data
from theory.oscillation.model import ACTIVATIONS, LOSSES, cnn_output, feature_alignment, init_filters, loss
from theory.oscillation.plots import plot_oscillation, plot_weak_test_accuracy
from theory.oscillation.sweep import learning_rate_sweep, median_over_seeds, sharpness
from theory.oscillation.training import oscillation_index, train_sgd, weak_only_accuracy

__all__ = ['feature_noise_data', 'ACTIVATIONS', 'LOSSES', 'cnn_output', 'feature_alignment', 'init_filters', 'loss',
           'plot_oscillation', 'plot_weak_test_accuracy', 'learning_rate_sweep', 'median_over_seeds', 'sharpness',
           'oscillation_index', 'train_sgd', 'weak_only_accuracy']
