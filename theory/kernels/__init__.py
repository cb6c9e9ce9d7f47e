"""Tensor-program kernels: infinite-width NNGP kernels and NTKs of an MLP, a CNN and an RNN, checked on networks.

Greg Yang, "Scaling Limits of Wide Neural Networks with Weight Sharing: Gaussian Process Behavior, Gradient
Independence, and Neural Tangent Kernel Derivation", arXiv 1902.04760 (companion code for the GP kernels:
thegregyang/GP4A). The paper's scaling-limit theorem gives, for networks whose weights are shared across a
layer's uses (convolutions, recurrences), the Gaussian-process limit of the outputs (the NNGP kernel), the NTK at
initialisation, and rederives the semicircle and Marchenko-Pastur laws. This family computes

* the recursions (:mod:`theory.kernels.recursions`) in float64 with the closed-form arc-cosine (ReLU) and
  arcsine (erf) expectations (:mod:`theory.kernels.expectations`);
* finite networks in the same NTK parametrization (:mod:`theory.kernels.networks`) and their empirical NNGP and
  NTK (``J J^T`` from :func:`optim.per_example_grads`; :mod:`theory.kernels.empirical`);
* the approach of the finite kernels as the width grows, with the fitted log-log slope (expected ``-1/2``;
  :mod:`theory.kernels.sweeps`);
* the semicircle and Marchenko-Pastur laws against sampled matrices (KS distance to the closed-form CDFs, and the
  Catalan / Narayana moments; :mod:`theory.kernels.rmt`);

and ``plots`` draws them. Conventions: NTK parametrization (weights ``N(0, 1)`` scaled by ``sigma_w /
sqrt(fan_in)``), which is neural-tangents' default; a scalar output; the CNN is 1-D with circular padding and an
odd filter; the RNN reads out its last step. The stored neural-tangents 0.6.5 kernels
(tests/theory/fixtures/kernels) match the MLP and CNN recursions to 1e-6; neural-tangents has no simple-RNN
layer, so the RNN is checked against finite networks only.
"""

from theory.kernels.empirical import empirical_kernels, empirical_nngp, empirical_ntk
from theory.kernels.expectations import ACTIVATIONS, dual_matrix, duals
from theory.kernels.networks import Network, cnn_network, mlp_network, rnn_network
from theory.kernels.plots import plot_spectra, plot_width_sweep
from theory.kernels.recursions import cnn_kernels, mlp_kernels, rnn_kernels
from theory.kernels.rmt import (catalan, ks_distance, mp_cdf, mp_density, mp_moment, semicircle_cdf,
                                semicircle_density, spectrum_check, wigner_spectrum, wishart_spectrum)
from theory.kernels.sweeps import architecture, fit_slope, fixed_inputs, width_sweep

__all__ = ['empirical_kernels', 'empirical_nngp', 'empirical_ntk', 'ACTIVATIONS', 'dual_matrix', 'duals', 'Network',
           'cnn_network', 'mlp_network', 'rnn_network', 'plot_spectra', 'plot_width_sweep', 'cnn_kernels',
           'mlp_kernels', 'rnn_kernels', 'catalan', 'ks_distance', 'mp_cdf', 'mp_density', 'mp_moment',
           'semicircle_cdf', 'semicircle_density', 'spectrum_check', 'wigner_spectrum', 'wishart_spectrum',
           'architecture', 'fit_slope', 'fixed_inputs', 'width_sweep']
