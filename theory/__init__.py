"""theory: small exact experiments on the shared primitives of :mod:`optim`, one subpackage per family.

* :mod:`theory.hessian`: Hessian spectra of small MLPs (GGN split, SLQ, outliers, batch sharpness);
* :mod:`theory.stability`: exact mean-square stability of linearised SGD, and the minima GD and SGD reach;
* :mod:`theory.langevin`: Langevin dynamics with iterate averaging on planted problems;
* :mod:`theory.sgn`: Small-Gain Nash certificates of contraction for differentiable games;
* :mod:`theory.last_iterate`: last-iterate rates of stochastic (mirror) gradient methods, measured;
* :mod:`theory.convex_relu`: convex (certified global) training of two-layer ReLU networks, ADMM, adversarial;
* :mod:`theory.kernels`: tensor-program NNGP kernels and NTKs (MLP, CNN, RNN) against finite networks; RMT laws;
* :mod:`theory.sgd_noise`: SGD noise across the lazy and feature regimes, T_c(P), the perceptron model;
* :mod:`theory.coherence`: coherence of per-example gradients, real vs random labels, robust averaging;
* :mod:`theory.oscillation`: benign oscillation, large-learning-rate SGD learning weak features;
* :mod:`theory.directional_sharpness`: directional sharpness of SGD's, Adam's and clipped updates.

Each family keeps its computations (float64, checked against a closed form or a dense oracle) apart from its
``plots`` module; :mod:`theory.numerics` and :mod:`theory.plotting` hold what the families share.
"""

from theory import hessian, langevin, numerics, plotting, sgn, stability
from theory import convex_relu, last_iterate
from theory import kernels, sgd_noise
from theory import coherence, directional_sharpness, oscillation

__all__ = ['hessian', 'langevin', 'numerics', 'plotting', 'sgn', 'stability']
__all__ += ['convex_relu', 'last_iterate']
__all__ += ['kernels', 'sgd_noise']
__all__ += ['coherence', 'directional_sharpness', 'oscillation']
