"""polyak.optim: optimizers as optax transforms, and the primitives everything shares.

Importing the package registers every optimizer in :mod:`optim.registry`.
"""

from optim import registry
from optim.registry import register
from optim.mfac import mfac, scale_by_mfac
from optim.rolling_ball import rolling_ball, scale_by_rolling_ball
from optim.sophia import scale_by_sophia, sophia_g, sophia_h
from optim.curvature import (dense_matrix, flatten_matvec, gauss_newton_matvec, gnvp, hessian_matvec, hvp,
                              per_example_grads)
from optim.estimators import hutchinson_diagonal, hutchinson_trace, hutchpp_trace
# `lanczos` (the function) is not re-exported: it would shadow the submodule `optim.lanczos`.
from optim.lanczos import (LanczosResult, SpectralQuadrature, power_iteration, ritz, slq, spectral_cdf,
                           spectral_density, tridiagonal)
from optim.newton_schulz import inverse_sqrt, orthogonalize, sqrt_and_inverse_sqrt, whiten
from optim.langevin import add_langevin_noise, project_to_sphere, sgld
from optim.averaging import averaged_params, averaged_second_moment, ema_params, swa, tail_average
from optim.auon import auon, hybrid_auon, scale_by_auon, scale_by_hybrid_auon
from optim.frugal import frugal, scale_by_frugal
from optim.swan import scale_by_swan, swan

from optim.diffgrad import diffgrad, scale_by_diffgrad
from optim.adabelief import adabelief, scale_by_adabelief
from optim.adamp import adamp, scale_by_adamp, scale_by_sgdp, sgdp
from optim.sgd_sai import scale_by_sgd_sai, sgd_sai
from optim.clipping import coordinate_clip, coordinate_clip_sgd
from optim.schedules import linear_decay_schedule, refined_schedule

__all__ = ['registry', 'register']
__all__ += ['mfac', 'scale_by_mfac', 'rolling_ball', 'scale_by_rolling_ball', 'scale_by_sophia', 'sophia_g',
            'sophia_h']
__all__ += ['dense_matrix', 'flatten_matvec', 'gauss_newton_matvec', 'gnvp', 'hessian_matvec', 'hvp',
            'per_example_grads', 'hutchinson_diagonal', 'hutchinson_trace', 'hutchpp_trace', 'LanczosResult',
            'SpectralQuadrature', 'power_iteration', 'ritz', 'slq', 'spectral_cdf', 'spectral_density',
            'tridiagonal', 'inverse_sqrt', 'orthogonalize', 'sqrt_and_inverse_sqrt', 'whiten']
__all__ += ['auon', 'hybrid_auon', 'scale_by_auon', 'scale_by_hybrid_auon', 'frugal', 'scale_by_frugal',
            'scale_by_swan', 'swan']
__all__ += ['diffgrad', 'scale_by_diffgrad', 'adabelief', 'scale_by_adabelief', 'adamp', 'scale_by_adamp', 'sgdp',
            'scale_by_sgdp', 'sgd_sai', 'scale_by_sgd_sai', 'coordinate_clip', 'coordinate_clip_sgd',
            'linear_decay_schedule', 'refined_schedule']
__all__ += ['add_langevin_noise', 'project_to_sphere', 'sgld', 'averaged_params', 'averaged_second_moment',
            'ema_params', 'swa', 'tail_average']
