"""The primitives every other part of polyak calls, each written once.

* :mod:`optim.primitives.curvature`: Hessian- and Gauss-Newton-vector products, per-example gradients, dense
  oracles for small problems.
* :mod:`optim.primitives.estimators`: Hutchinson and Hutch++ trace and diagonal estimators.
* :mod:`optim.primitives.spectral`: Lanczos, stochastic Lanczos quadrature, spectral densities, power iteration.
* :mod:`optim.primitives.newton_schulz`: orthogonalisation, (inverse) matrix square roots, whitening.
* :mod:`optim.primitives.spsa`: simultaneous-perturbation (zeroth-order) gradient estimates.
"""

from optim.primitives.curvature import (dense_matrix, flatten_matvec, gauss_newton_matvec, gnvp, hessian_matvec,
                                        hvp, per_example_grads)
from optim.primitives.estimators import hutchinson_diagonal, hutchinson_trace, hutchpp_trace
from optim.primitives.newton_schulz import inverse_sqrt, orthogonalize, sqrt_and_inverse_sqrt, whiten
from optim.primitives.spectral import (LanczosResult, SpectralQuadrature, lanczos, power_iteration, ritz, slq,
                                       spectral_cdf, spectral_density, tridiagonal)
from optim.primitives.spsa import gaussian_direction, spsa_gradient, spsa_projected_gradient

__all__ = ['dense_matrix', 'flatten_matvec', 'gauss_newton_matvec', 'gnvp', 'hessian_matvec', 'hvp',
           'per_example_grads', 'hutchinson_diagonal', 'hutchinson_trace', 'hutchpp_trace', 'inverse_sqrt',
           'orthogonalize', 'sqrt_and_inverse_sqrt', 'whiten', 'LanczosResult', 'SpectralQuadrature', 'lanczos',
           'power_iteration', 'ritz', 'slq', 'spectral_cdf', 'spectral_density', 'tridiagonal',
           'gaussian_direction', 'spsa_gradient', 'spsa_projected_gradient']
